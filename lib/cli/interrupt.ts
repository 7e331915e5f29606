/**
 * interrupt.ts — Ctrl-C for the CLI's long jobs (train, sft): the first SIGINT asks the job to stop
 * after the current step (it then writes its checkpoint or adapter), a second one quits at once.
 */

/** An AbortSignal raised by the first Ctrl-C; call `release()` when the job is over. */
export interface Interrupt {
  signal: AbortSignal;
  release: () => void;
}

/** Listens for SIGINT until released; `say` tells the user what the first Ctrl-C does. */
export function interruptOnSigint(say: (message: string) => void, what: string): Interrupt {
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    say(`interrupted: ${what} (Ctrl-C again to quit now)`);
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  return { signal: controller.signal, release: () => process.off('SIGINT', onSigint) };
}
