// Worker thread of the symbolic answer check (see symbolic.ts): compares two LaTeX
// expressions with @cortex-js/compute-engine — structurally, exactly, numerically, and by
// evaluation at sample points when they have free variables (equations: up to a constant
// factor). It runs in a worker so that the main thread can cut a hanging check off.

import { parentPort, workerData } from 'node:worker_threads';
import { ComputeEngine } from '@cortex-js/compute-engine';

type BoxedExpression = ReturnType<ComputeEngine['box']>;

// Layout of the shared Int32Array; symbolic.ts uses the same numbers.
const SLOT_DONE = 0;
const SLOT_READY = 1;
const SLOT_RESULT = 2;

/** A request from the main thread. */
export interface SymbolicRequest {
  a: string;
  b: string;
  /** Relative tolerance used when either side holds a decimal number. */
  relTol: number;
  /** Test hook: spin this long before answering (to exercise the time limit). */
  spinMs?: number;
}

interface Complex {
  re: number;
  im: number;
}

const ce = new ComputeEngine();
const state = new Int32Array((workerData as { sab: SharedArrayBuffer }).sab);

// Fixed sample values (deterministic), away from 0, 1 and common poles.
const SAMPLES = [0.7131, 1.3791, 2.1173, 0.4317, 1.8233, 2.5711, 0.9377, 1.1621, 3.0937, 0.5573, 1.6127, 2.7919];

function close(x: Complex, y: Complex, tol: number): boolean {
  const d = Math.hypot(x.re - y.re, x.im - y.im);
  const scale = Math.max(Math.hypot(x.re, x.im), Math.hypot(y.re, y.im));
  return d <= tol * scale || d <= 1e-12;
}

function toComplex(e: BoxedExpression): Complex | null {
  const re = e.re;
  const im = e.im;
  if (typeof re !== 'number' || Number.isNaN(re)) return null;
  const c = { re, im: typeof im === 'number' && !Number.isNaN(im) ? im : 0 };
  return Number.isFinite(c.re) && Number.isFinite(c.im) ? c : null;
}

function substitute(json: unknown, values: Record<string, number>): unknown {
  if (typeof json === 'string') return Object.hasOwn(values, json) ? values[json] : json;
  if (Array.isArray(json)) return json.map((x) => substitute(x, values));
  return json;
}

function evalAt(
  e: BoxedExpression,
  values: Record<string, number>,
  compiled: Map<BoxedExpression, unknown>,
): Complex | null {
  let f = compiled.get(e);
  if (f === undefined) {
    try {
      f = e.compile() ?? null;
    } catch {
      f = null;
    }
    compiled.set(e, f);
  }
  if (typeof f === 'function') {
    try {
      const v = (f as (vars: Record<string, number>) => unknown)(values);
      if (typeof v === 'number' && Number.isFinite(v)) return { re: v, im: 0 };
    } catch {
      // fall through to the exact route
    }
  }
  try {
    return toComplex(ce.box(substitute(e.json, values) as never).N());
  } catch {
    return null;
  }
}

const RELATIONS = new Set(['Less', 'LessEqual', 'Greater', 'GreaterEqual', 'NotEqual']);

/** 1: equal, 0: not equal, -1: cannot tell. */
function compare(req: SymbolicRequest): number {
  const inexact = /\d\.\d|\.\d/.test(req.a) || /\d\.\d|\.\d/.test(req.b);
  const tol = inexact ? req.relTol : 1e-9;
  const A = ce.parse(req.a);
  const B = ce.parse(req.b);
  if (!A.isValid || !B.isValid) return -1;
  if (A.isSame(B)) return 1;
  if (RELATIONS.has(A.operator) || RELATIONS.has(B.operator)) return 0;
  const eqA = A.operator === 'Equal';
  const eqB = B.operator === 'Equal';
  if (eqA !== eqB) return 0;
  let fa = A;
  let fb = B;
  if (eqA) {
    fa = ce.box(['Subtract', A.op1.json, A.op2.json] as never);
    fb = ce.box(['Subtract', B.op1.json, B.op2.json] as never);
  }
  const vars = [...new Set([...fa.unknowns, ...fb.unknowns])];
  if (vars.length === 0 && !eqA) {
    if (!inexact) {
      const exact = fa.isEqual(fb);
      if (exact !== undefined) return exact ? 1 : 0;
    }
    const x = toComplex(fa.N());
    const y = toComplex(fb.N());
    if (!x || !y) return -1;
    return close(x, y, tol) ? 1 : 0;
  }
  // Free variables (or equations): compare values at sample points; equations up to a factor.
  const compiled = new Map<BoxedExpression, unknown>();
  let ratio: Complex | null = null;
  let ok = 0;
  for (let t = 0; t < SAMPLES.length && ok < 5; t++) {
    const values: Record<string, number> = {};
    vars.forEach((v, k) => {
      values[v] = SAMPLES[(t + 3 * k) % SAMPLES.length] as number;
    });
    const x = evalAt(fa, values, compiled);
    const y = evalAt(fb, values, compiled);
    if (!x || !y) continue;
    if (eqA) {
      const zx = Math.hypot(x.re, x.im) < 1e-12;
      const zy = Math.hypot(y.re, y.im) < 1e-12;
      if (zx && zy) continue;
      if (zx !== zy) return 0;
      const den = y.re * y.re + y.im * y.im;
      const r = { re: (x.re * y.re + x.im * y.im) / den, im: (x.im * y.re - x.re * y.im) / den };
      if (ratio === null) ratio = r;
      else if (!close(r, ratio, Math.max(tol, 1e-7))) return 0;
    } else if (!close(x, y, Math.max(tol, 1e-7))) {
      return 0;
    }
    ok++;
  }
  return ok >= 3 ? 1 : -1;
}

(parentPort as NonNullable<typeof parentPort>).on('message', (req: SymbolicRequest) => {
  let result = -1;
  try {
    if (req.spinMs) {
      const until = Date.now() + req.spinMs;
      while (Date.now() < until) {
        // busy: simulates a check that hangs
      }
    }
    ce.pushScope();
    try {
      result = compare(req);
    } finally {
      ce.popScope();
    }
  } catch {
    result = -1;
  }
  Atomics.store(state, SLOT_RESULT, result);
  Atomics.store(state, SLOT_DONE, 1);
  Atomics.notify(state, SLOT_DONE);
});

// Warm up (the first compile() costs a few hundred ms) so that time limits measure real work.
try {
  ce.pushScope();
  compare({ a: '(x+1)^2+\\frac{\\pi}{3}', b: 'x^2+2x+1+\\frac{\\pi}{3}', relTol: 1e-4 });
} catch {
  // not fatal
} finally {
  ce.popScope();
}
Atomics.store(state, SLOT_READY, 1);
Atomics.notify(state, SLOT_READY);
