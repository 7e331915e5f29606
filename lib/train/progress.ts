/**
 * progress.ts — the training progress display: on a TTY one line redrawn in place
 * (`[#####-----] 3/10  ETA 1m20s  reward 1.23  acc 45.0%  12.3 tok/s`), elsewhere (logs, CI, pipes)
 * one plain line per step. Messages (warnings, checkpoints) print on their own lines above the bar.
 */

/** What one step reports to the progress display. */
export interface ProgressUpdate {
  step: number;
  reward?: number;
  accuracy?: number;
  tokensPerSecond?: number;
  loss?: number;
  skipped?: boolean;
}

/** Options of {@link ProgressBar}. */
export interface ProgressOptions {
  /** Total steps of the run. */
  total: number;
  /** Steps already done when this process started (a resumed run); ETA counts only the steps run here. */
  startStep?: number;
  /** Default process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Force TTY (redrawn) or plain output; default: the stream's isTTY. */
  tty?: boolean;
  /** Prefix of each line. Default 'train'. */
  label?: string;
}

/** Formats seconds as `45s`, `3m05s` or `2h07m`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** A progress bar for the training loop. */
export class ProgressBar {
  /** @internal */
  private readonly _o: Required<Omit<ProgressOptions, 'tty'>> & { tty: boolean };
  /** @internal */
  private readonly _t0 = performance.now();
  /** @internal */
  private _drawn = false;
  /** @internal */
  private _last = '';

  constructor(options: ProgressOptions) {
    const stream = options.stream ?? process.stderr;
    this._o = {
      total: options.total,
      startStep: options.startStep ?? 0,
      stream,
      tty: options.tty ?? (stream as { isTTY?: boolean }).isTTY === true,
      label: options.label ?? 'train',
    };
  }

  /** The line for a step (without a bar on non-TTY output). */
  format(u: ProgressUpdate): string {
    const { total, startStep, tty, label } = this._o;
    const done = u.step - startStep;
    const elapsed = (performance.now() - this._t0) / 1000;
    const eta = done > 0 ? (elapsed / done) * (total - u.step) : Number.NaN;
    const parts = [`${u.step}/${total}`, `ETA ${formatDuration(eta)}`];
    if (u.reward !== undefined && Number.isFinite(u.reward)) parts.push(`reward ${u.reward.toFixed(3)}`);
    if (u.accuracy !== undefined && Number.isFinite(u.accuracy)) parts.push(`acc ${(100 * u.accuracy).toFixed(1)}%`);
    if (u.loss !== undefined && Number.isFinite(u.loss)) parts.push(`loss ${u.loss.toFixed(4)}`);
    if (u.tokensPerSecond !== undefined && Number.isFinite(u.tokensPerSecond))
      parts.push(`${u.tokensPerSecond.toFixed(1)} tok/s`);
    if (u.skipped) parts.push('SKIPPED');
    if (!tty) return `${label} step ${parts.join('  ')}`;
    const width = 20;
    const filled = Math.max(0, Math.min(width, Math.round((width * u.step) / Math.max(1, total))));
    return `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${parts.join('  ')}`;
  }

  /** Shows a step's progress. */
  update(u: ProgressUpdate): void {
    const line = this.format(u);
    if (!this._o.tty) {
      this._o.stream.write(`${line}\n`);
      return;
    }
    const cols = Math.max(20, (this._o.stream.columns ?? 100) - 1);
    this._last = line.slice(0, cols);
    this._o.stream.write(`\r\x1b[2K${this._last}`);
    this._drawn = true;
  }

  /** Prints a message on its own line (the bar is redrawn below it on a TTY). */
  log(message: string): void {
    if (this._o.tty && this._drawn) {
      this._o.stream.write(`\r\x1b[2K${message}\n${this._last}`);
      return;
    }
    this._o.stream.write(`${message}\n`);
  }

  /** Ends the display (moves past the bar on a TTY). */
  done(): void {
    if (this._o.tty && this._drawn) this._o.stream.write('\n');
    this._drawn = false;
  }
}
