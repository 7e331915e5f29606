// Symbolic equality with a time limit: runs @cortex-js/compute-engine in a worker thread
// (symbolic-worker.ts) and waits for it synchronously with Atomics.wait, so the grader
// stays a plain synchronous function. A check that runs past the limit (or crashes the
// worker, which has its own heap cap) counts as "cannot tell"; the worker is then replaced.

import { Worker } from 'node:worker_threads';

import type { SymbolicRequest } from './symbolic-worker.js';

// Layout of the shared Int32Array; symbolic-worker.ts uses the same numbers.
const SLOT_DONE = 0;
const SLOT_READY = 1;
const SLOT_RESULT = 2;

/** How long the first check may wait for the worker to start (load compute-engine). */
const STARTUP_LIMIT_MS = 60_000;

/** Default time limit of one symbolic check. */
export const DEFAULT_SYMBOLIC_TIMEOUT_MS = 2000;

/** Options of {@link symbolicEqual}. */
export interface SymbolicOptions {
  /** Time limit of the check in ms; past it the check counts as "cannot tell". Default 2000. */
  timeoutMs?: number;
  /** Relative tolerance when either side holds a decimal number. Default 1e-4. */
  relTol?: number;
}

interface Handle {
  worker: Worker;
  state: Int32Array;
  failed: string | null;
}

let handle: Handle | null = null;
let unavailable: string | null = null;
let timeouts = 0;

function bootstrapCode(): string {
  return `const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.tsx) {
    try { (await import(workerData.tsx)).register(); } catch {}
  }
  await import(workerData.entry);
})().catch((err) => {
  const s = new Int32Array(workerData.sab);
  Atomics.store(s, ${SLOT_READY}, 2);
  Atomics.notify(s, ${SLOT_READY});
});`;
}

function start(): Handle {
  const isTs = import.meta.url.endsWith('.ts');
  const entry = new URL(`./symbolic-worker${isTs ? '.ts' : '.js'}`, import.meta.url).href;
  let tsx: string | null = null;
  if (isTs) {
    try {
      tsx = import.meta.resolve('tsx/esm/api');
    } catch {
      tsx = null; // e.g. a runtime that strips types itself
    }
  }
  const sab = new SharedArrayBuffer(16);
  const state = new Int32Array(sab);
  const worker = new Worker(bootstrapCode(), {
    eval: true,
    workerData: { sab, entry, tsx },
    resourceLimits: { maxOldGenerationSizeMb: 512 },
    stdout: false,
    stderr: false,
  });
  worker.unref();
  worker.on('error', () => {
    // A worker killed by its heap cap or by terminate(): the waiting side handles it.
  });
  const h: Handle = { worker, state, failed: null };
  const ready = Atomics.wait(state, SLOT_READY, 0, STARTUP_LIMIT_MS);
  if (ready === 'timed-out' || Atomics.load(state, SLOT_READY) !== 1) {
    void worker.terminate();
    unavailable =
      ready === 'timed-out' ? 'the symbolic worker did not start in time' : 'the symbolic worker failed to load';
    h.failed = unavailable;
  }
  return h;
}

/**
 * Compares two LaTeX expressions symbolically (compute-engine), under a time limit.
 * Returns true (equal), false (not equal) or null (cannot tell: unparsable, undecidable,
 * timed out, or the symbolic engine is unavailable). Synchronous: it blocks the calling
 * thread for at most about `timeoutMs` (plus the worker's start on first use).
 */
export function symbolicEqual(
  a: string,
  b: string,
  options: SymbolicOptions & { spinMs?: number } = {},
): boolean | null {
  if (unavailable) return null;
  if (!handle) handle = start();
  if (handle.failed) {
    handle = null;
    return null;
  }
  const h = handle;
  const timeoutMs = options.timeoutMs ?? DEFAULT_SYMBOLIC_TIMEOUT_MS;
  Atomics.store(h.state, SLOT_DONE, 0);
  const req: SymbolicRequest = { a, b, relTol: options.relTol ?? 1e-4 };
  if (options.spinMs) req.spinMs = options.spinMs;
  h.worker.postMessage(req);
  const r = Atomics.wait(h.state, SLOT_DONE, 0, timeoutMs);
  if (r === 'timed-out') {
    timeouts++;
    void h.worker.terminate();
    handle = null;
    return null;
  }
  const v = Atomics.load(h.state, SLOT_RESULT);
  return v === 1 ? true : v === 0 ? false : null;
}

/** How many symbolic checks have hit their time limit in this process. */
export function symbolicTimeouts(): number {
  return timeouts;
}

/** Stops the symbolic worker (a later check starts a new one). */
export async function closeSymbolic(): Promise<void> {
  const h = handle;
  handle = null;
  if (h) await h.worker.terminate();
}
