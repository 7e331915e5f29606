/**
 * GenerateCommand.ts — `motif-native generate`: a quick look at what a model generates, from token
 * ids or (with the folder's tokenizer) from text, through the same engine `train` uses.
 */
import type { CommandModule } from 'yargs';
import type { GenerateRequest } from '../../model/generate.js';
import { type Device, loadModel } from '../../model/Model.js';
import { invalidParameterError } from '../../native/errors.js';

interface GenerateArgs {
  model: string;
  tokens?: string;
  prompt?: string;
  chat: boolean;
  n: number;
  'max-tokens': number;
  temperature: number;
  'top-p': number;
  'top-k': number;
  'min-p': number;
  seed?: number;
  stop?: string;
  device: string;
  threads: number;
  json: boolean;
}

function parseIds(flag: string, text: string): number[] {
  const ids = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  if (ids.length === 0 || ids.some((x) => !Number.isInteger(x) || x < 0))
    throw invalidParameterError(flag, 'comma-separated non-negative token ids like 1,2,3', text);
  return ids;
}

export const generateCommand: CommandModule<object, GenerateArgs> = {
  command: 'generate',
  describe: 'Generate completions from token ids or a text prompt',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'HuggingFace model folder' })
      .option('tokens', { type: 'string', describe: 'Prompt as comma-separated token ids, e.g. 1,2,3' })
      .option('prompt', { type: 'string', describe: "Prompt text (needs the folder's tokenizer.json)" })
      .option('chat', {
        type: 'boolean',
        default: false,
        describe: 'Treat --prompt as a user turn and apply the chat template',
      })
      .option('n', { type: 'number', default: 1, describe: 'Completions of the prompt (sharing its computation)' })
      .option('max-tokens', { type: 'number', default: 64, describe: 'Tokens to generate per completion, at most' })
      .option('temperature', { type: 'number', default: 0.7, describe: '0 = greedy' })
      .option('top-p', { type: 'number', default: 1, describe: 'Nucleus sampling mass in (0, 1]' })
      .option('top-k', { type: 'number', default: 0, describe: 'Keep the k most likely tokens (0 = off)' })
      .option('min-p', {
        type: 'number',
        default: 0,
        describe: 'Keep tokens at least this fraction as likely as the best (0 = off)',
      })
      .option('seed', { type: 'number', describe: 'Random seed (same seed, same tokens); default random' })
      .option('stop', {
        type: 'string',
        describe: "Stop token ids, comma-separated (default: the tokenizer's end-of-turn ids)",
      })
      .option('device', { type: 'string', default: 'auto', choices: ['auto', 'cpu', 'cuda'] })
      .option('threads', { type: 'number', default: 0, describe: 'CPU threads (0 = all)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print one JSON object' })
      .check((a) => {
        if ((a.tokens === undefined) === (a.prompt === undefined))
          throw new Error('Give exactly one of --tokens or --prompt.');
        return true;
      }),
  handler: async (argv) => {
    const model = await loadModel(argv.model, { device: argv.device as Device, threads: argv.threads });
    try {
      const req: GenerateRequest = {
        n: argv.n,
        maxTokens: argv['max-tokens'],
        temperature: argv.temperature,
        topP: argv['top-p'],
        topK: argv['top-k'],
        minP: argv['min-p'],
        seed: argv.seed,
        stopTokens: argv.stop !== undefined ? parseIds('--stop', argv.stop) : undefined,
      };
      if (argv.tokens !== undefined) req.tokens = parseIds('--tokens', argv.tokens);
      else if (argv.chat) req.messages = [{ role: 'user', content: argv.prompt ?? '' }];
      else req.text = argv.prompt;
      const started = performance.now();
      const [result] = await model.generate([req]);
      const seconds = (performance.now() - started) / 1000;
      const stats = model.lastGenerateStats;
      if (argv.json) {
        console.log(
          JSON.stringify(
            {
              completions: result.completions.map((c) => ({ ...c, tokens: [...c.tokens], logprobs: [...c.logprobs] })),
              stats,
              seconds,
            },
            null,
            2,
          ),
        );
        return;
      }
      result.completions.forEach((c, i) => {
        console.log(`--- completion ${i} (${c.tokens.length} tokens, ${c.finishReason})`);
        console.log(c.text ?? [...c.tokens].join(','));
      });
      const gen = stats?.generatedTokens ?? 0;
      console.log(
        `--- ${gen} tokens in ${seconds.toFixed(2)} s (${(gen / seconds).toFixed(1)} tok/s) on ${model.info.backend}`,
      );
    } finally {
      await model.dispose();
    }
  },
};
