// The CLI's Ctrl-C handling (lib/cli/interrupt.ts): the first SIGINT aborts the job's signal and
// says so; release() stops listening (a later SIGINT no longer reaches it).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { interruptOnSigint } from '../../lib/cli/interrupt.js';

describe('interruptOnSigint', () => {
  it('aborts on the first SIGINT and stops listening when released', () => {
    const said: string[] = [];
    const before = process.listenerCount('SIGINT');
    const it1 = interruptOnSigint((m) => said.push(m), 'finishing the current step');
    assert.equal(process.listenerCount('SIGINT'), before + 1);
    assert.equal(it1.signal.aborted, false);
    process.emit('SIGINT', 'SIGINT');
    assert.equal(it1.signal.aborted, true);
    assert.match(said[0], /interrupted: finishing the current step \(Ctrl-C again to quit now\)/);
    it1.release();
    assert.equal(process.listenerCount('SIGINT'), before);
  });
});
