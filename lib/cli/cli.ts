#!/usr/bin/env node
/**
 * cli.ts — the `motif-native` command: yargs root; each command lives in commands/.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { MotifError } from '../native/errors.js';
import { version } from '../version.js';
import { evalCommand } from './commands/EvalCommand.js';
import { exportGgufCommand } from './commands/ExportGgufCommand.js';
import { generateCommand } from './commands/GenerateCommand.js';
import { infoCommand } from './commands/InfoCommand.js';
import { mergeCommand } from './commands/MergeCommand.js';
import { reportCommand } from './commands/ReportCommand.js';
import { sftCommand } from './commands/SftCommand.js';
import { trainCommand } from './commands/TrainCommand.js';

function report(err: unknown): never {
  const e = err as Error;
  const code = err instanceof MotifError ? ` [${err.code}]` : '';
  console.error(`motif-native: ${e?.message ?? String(err)}${code}`);
  if (process.env.MOTIF_DEBUG === '1' && e?.stack) console.error(e.stack);
  process.exit(1);
}

await yargs(hideBin(process.argv))
  .scriptName('motif-native')
  .usage('$0 <command> [options]\n\nTrain language models to reason over several rounds (MOTIF) on a native engine.')
  .command(trainCommand)
  .command(sftCommand)
  .command(evalCommand)
  .command(generateCommand)
  .command(mergeCommand)
  .command(exportGgufCommand)
  .command(reportCommand)
  .command(infoCommand)
  .demandCommand(1, 'Name a command (see the list above).')
  .strict()
  .version(version)
  .help()
  .alias('h', 'help')
  .wrap(Math.min(110, process.stdout.columns || 100))
  .fail((msg, err, y) => {
    if (err) report(err);
    console.error(`${y.help()}\n\n${msg}`);
    process.exit(2);
  })
  .parseAsync()
  .catch(report);
