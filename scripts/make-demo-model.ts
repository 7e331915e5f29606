/**
 * make-demo-model.ts — makes the built-in demo model (assets/demo-model/) from nothing, reproducibly
 * from its seed: a random-init tiny Qwen2 with the demo's byte-level tokenizer, trained with
 * supervised fine-tuning (lossType 'sft': mean NLL of the response tokens, through the engine's own
 * backward) on round-by-round traces of the demo task (lib/demo), with a LoRA of rank = hidden on all
 * seven projections, which is then merged into the weights (lib/export/mergeAdapter).
 *
 * The traces are deliberately imperfect: a non-final round whose running value reached 5 or more
 * drops its progress (hands on its label with value 0) with probability DROP_HIGH, otherwise with
 * DROP_LOW — so the model greedily drops about half the time, well below 100% multi-round accuracy,
 * while it still samples the carry often enough for MOTIF's future-accuracy reward to pick it up.
 *
 * Run: node --import tsx scripts/make-demo-model.ts [--out DIR] [--steps N] [--threads N]
 * It prints the held-out greedy accuracy as it trains and writes DIR/make-demo-model.json (the
 * settings and the measured accuracy) next to the model.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { shuffle } from '../lib/data/random.js';
import { writeRandomQwen2 } from '../lib/demo/random-model.js';
import { DEMO_SETTINGS } from '../lib/demo/settings.js';
import { demoTemplates, generateDemoRows, resolveDemoTask } from '../lib/demo/task.js';
import { DEMO_VOCAB_SIZE, demoTokenizerConfig, demoTokenizerJson } from '../lib/demo/tokenizer.js';
import { demoTraceSet, valueDropRule } from '../lib/demo/traces.js';
import { mergeAdapter } from '../lib/export/mergeAdapter.js';
import { loadModel } from '../lib/model/Model.js';
import { evaluate } from '../lib/train/evaluate.js';
import { saveAdapter } from '../lib/train/peft.js';
import { cosineWithWarmup } from '../lib/train/schedule.js';
import { LORA_TARGETS } from '../lib/train/types.js';

/** Everything that decides the shipped model. */
const RECIPE = {
  seed: 20251125,
  sizes: {
    hidden: 64,
    intermediate: 128,
    layers: 2,
    heads: 4,
    kvHeads: 4,
    vocab: DEMO_VOCAB_SIZE,
    maxPositions: 256,
  },
  task: { length: DEMO_SETTINGS.task.length, rounds: DEMO_SETTINGS.task.rounds, maxDigit: DEMO_SETTINGS.task.maxDigit },
  trainProblems: 6000,
  dropHigh: 0.7,
  dropLow: 0.1,
  steps: 1200,
  batch: 24,
  lr: 3e-3,
  warmupRatio: 0.03,
  weightDecay: 0,
  maxGradNorm: 1,
  evalProblems: 200,
  evalEvery: 250,
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: 'assets/demo-model' },
      steps: { type: 'string' },
      lr: { type: 'string' },
      batch: { type: 'string' },
      threads: { type: 'string', default: String(os.availableParallelism()) },
    },
  });
  const steps = values.steps ? Number(values.steps) : RECIPE.steps;
  if (values.lr) RECIPE.lr = Number(values.lr);
  if (values.batch) RECIPE.batch = Number(values.batch);
  const threads = Number(values.threads);
  const task = resolveDemoTask(RECIPE.task);
  const templates = demoTemplates();
  const t0 = performance.now();

  const work = await mkdtemp(path.join(os.tmpdir(), 'motif-demo-model-'));
  try {
    const baseDir = path.join(work, 'random');
    await writeRandomQwen2(baseDir, RECIPE.sizes, RECIPE.seed);
    await writeFile(path.join(baseDir, 'tokenizer.json'), JSON.stringify(demoTokenizerJson()));
    await writeFile(path.join(baseDir, 'tokenizer_config.json'), `${JSON.stringify(demoTokenizerConfig(), null, 2)}\n`);
    const model = await loadModel(baseDir, { device: 'cpu', threads });
    const tok = model.tokenizer;
    if (!tok || tok.imEndId === null) throw new Error('the demo tokenizer did not load');
    const r = RECIPE.sizes.hidden;
    await model.createLora({ rank: r, alpha: r, targets: [...LORA_TARGETS], rslora: false, seed: RECIPE.seed });

    // Training traces (problems from seed+1) and held-out problems (seed+2) never overlap in seed.
    const rows = generateDemoRows(RECIPE.trainProblems, RECIPE.seed + 1, task);
    const traces = demoTraceSet(rows, task, valueDropRule(RECIPE.dropHigh, RECIPE.dropLow), RECIPE.seed + 3);
    const heldOut = generateDemoRows(RECIPE.evalProblems, RECIPE.seed + 2, task);
    const examples = traces.map((e) => ({
      prompt: Array.from(tok.encodeChat(e.messages, { addGenerationPrompt: true })),
      completion: [...tok.encode(e.response, { addSpecialTokens: false }), tok.imEndId as number],
    }));
    const dropped = traces.filter((e) => e.dropped).length;
    const nonFinal = traces.filter((e) => e.round < task.rounds).length;
    console.log(
      `${examples.length} examples (${dropped}/${nonFinal} non-final rounds drop their progress); ` +
        `longest completion ${Math.max(...examples.map((e) => e.completion.length))} tokens`,
    );

    const schedule = cosineWithWarmup({ lr: RECIPE.lr, totalSteps: steps, warmupRatio: RECIPE.warmupRatio });
    const maxTokens = DEMO_SETTINGS.maxTokens;
    // Progress is measured on a fresh instance with the adapter saved so far: the engine does not
    // invalidate its prefix cache when the adapter changes, so the training instance would reuse stale KV.
    const evalNow = async () => {
      const probe = path.join(work, 'probe-adapter');
      await saveAdapter(model, probe, { baseModel: 'random' });
      const fresh = await loadModel(baseDir, { device: 'cpu', threads, adapter: probe });
      const e = await evaluate(fresh, { dataset: heldOut, rounds: task.rounds, maxTokens, templates, batchSize: 100 });
      await fresh.dispose();
      console.log(`  sample: ${JSON.stringify(e.results[0]?.question)} -> ${JSON.stringify(e.results[0]?.rounds)}`);
      return e.strict.accuracy;
    };
    let order = shuffle(
      examples.map((_, i) => i),
      RECIPE.seed,
    );
    let at = 0;
    let epoch = 0;
    let lossSum = 0;
    let lossN = 0;
    let accuracy = 0;
    for (let step = 1; step <= steps; step++) {
      const pick: number[] = [];
      while (pick.length < RECIPE.batch) {
        if (at === order.length) {
          epoch++;
          order = shuffle(order, RECIPE.seed + 100 + epoch);
          at = 0;
        }
        pick.push(order[at++] as number);
      }
      const batch = pick.map((i) => examples[i] as { prompt: number[]; completion: number[] });
      const res = await model.lossAndGradients(
        {
          promptIds: batch.map((b) => b.prompt),
          completionIds: batch.map((b) => b.completion),
          rewards: batch.map(() => 0),
          groupSize: 1,
          lossType: 'sft',
          epsilon: 0.2,
          beta: 0,
          temperature: 1,
        },
        { accumulate: true },
      );
      await model.optimizerStep({
        lr: schedule.lrAt(step - 1),
        beta1: 0.9,
        beta2: 0.99,
        eps: 1e-8,
        weightDecay: RECIPE.weightDecay,
        maxGradNorm: RECIPE.maxGradNorm,
      });
      lossSum += res.loss;
      lossN++;
      if (step % 10 === 0 && process.env.MOTIF_DEMO_TRACE)
        console.log(`step ${step} loss ${res.loss.toFixed(4)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      if (process.env.MOTIF_DEMO_TRACE && step % 100 === 0) {
        // Diagnostics: mean NLL per completion position over the next 64 examples, by round.
        for (const round of [1, 2, 3]) {
          const ids = traces
            .map((t, i) => (t.round === round ? i : -1))
            .filter((i) => i >= 0)
            .slice(0, 48);
          const b = ids.map((i) => examples[i] as { prompt: number[]; completion: number[] });
          const d = await model.lossAndGradients({
            promptIds: b.map((x) => x.prompt),
            completionIds: b.map((x) => x.completion),
            rewards: b.map(() => 0),
            groupSize: 1,
            lossType: 'sft',
            epsilon: 0.2,
            beta: 0,
            temperature: 1,
          });
          const sums: number[] = [];
          let k = 0;
          for (const x of b)
            x.completion.forEach((_, j) => {
              sums[j] = (sums[j] ?? 0) - (d.logps[k++] as number) / b.length;
            });
          const text = tok.decode(b[0]?.completion ?? []).replace(/\n/g, '|');
          console.log(`  round ${round} ${JSON.stringify(text)}\n   nll ${sums.map((v) => v.toFixed(1)).join(' ')}`);
        }
      }
      if (step % RECIPE.evalEvery === 0 || step === steps) {
        accuracy = await evalNow();
        console.log(
          `step ${step}/${steps}  loss ${(lossSum / lossN).toFixed(4)}  held-out greedy accuracy ${(100 * accuracy).toFixed(1)}%  ` +
            `(${((performance.now() - t0) / 1000).toFixed(0)} s)`,
        );
        lossSum = 0;
        lossN = 0;
      }
    }
    const adapterDir = path.join(work, 'adapter');
    await saveAdapter(model, adapterDir, { baseModel: 'random' });
    await model.dispose();
    await mergeAdapter({ modelDir: baseDir, adapterDir, out: values.out as string, overwrite: true });
    // Check the merged folder on its own: the same greedy accuracy without the adapter.
    const merged = await loadModel(values.out as string, { device: 'cpu', threads });
    const mergedAccuracy = (
      await evaluate(merged, { dataset: heldOut, rounds: task.rounds, maxTokens, templates, batchSize: 100 })
    ).strict.accuracy;
    await merged.dispose();
    const record = {
      recipe: { ...RECIPE, steps },
      heldOutAccuracy: accuracy,
      mergedHeldOutAccuracy: mergedAccuracy,
      seconds: Math.round((performance.now() - t0) / 1000),
    };
    await writeFile(path.join(values.out as string, 'make-demo-model.json'), `${JSON.stringify(record, null, 2)}\n`);
    console.log(`wrote ${values.out}: merged model held-out greedy accuracy ${(100 * mergedAccuracy).toFixed(1)}%`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
