#!/usr/bin/env node
// The speed benchmark's sharp runner (bench/tools.py drives it): the pipeline of sharp_render.mjs (auto-orient,
// resize, flatten onto white, JPEG at the preset's quality, sharp's defaults otherwise), timed in-process so Node's
// start-up is not measured, or run once in a fresh process for its peak memory.
//
//   node sharp_bench.mjs --versions          {"sharp", "libvips", "node", "defaultConcurrency"}
//   node sharp_bench.mjs --idle              sharp imported, nothing rendered: {"peak_kb"}
//   node sharp_bench.mjs --rss [N|default]   {file, presets} on stdin, each preset rendered once: {"file", "ok", "peak_kb"}
//   node sharp_bench.mjs --serve [N|default] JSON requests on stdin lines (open, own, one, save), one answer a line
//
// N is given to sharp.concurrency(N) (default: sharp's own choice), in both modes, since libvips' thread count
// changes its memory as well as its speed. Presets are {name, width, height, fit, quality}, sent by the caller from
// python/kiray_imaging/presets.py.
//
// The pipeline is sharp_render.mjs's, from sharp_pipeline.mjs; the benchmark's tests also check that both write
// identical bytes for the same job.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import sharp from 'sharp';
import { UNSUPPORTED, pipeline as sharedPipeline } from './sharp_pipeline.mjs';

const pipeline = (input, job) => sharedPipeline(sharp, input, job);

// The default concurrency, read before any request changes it, for the report's header.
const DEFAULT_CONCURRENCY = sharp.concurrency();

function peakKb() {
  // VmHWM of this process alone: the parent's getrusage would also count pages the child inherited before exec.
  const line = readFileSync('/proc/self/status', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmHWM:'));
  if (line === undefined) throw new Error('no VmHWM in /proc/self/status');
  return Number(line.split(/\s+/)[1]);
}

function unreadable(file, err) {
  // libvips stacks one line per layer it failed through; the one naming the missing codec is the news.
  const lines = String(err.message).trim().split('\n');
  const reason = lines.find((line) => UNSUPPORTED.test(line)) ?? lines[0];
  return { file, ok: false, reason, unsupported: UNSUPPORTED.test(err.message) };
}

async function render(input, preset) {
  const start = process.hrtime.bigint();
  const { data, info } = await pipeline(input, preset).toBuffer({ resolveWithObject: true });
  return { data, info, ms: Number(process.hrtime.bigint() - start) / 1e6 };
}

// The --serve session: one photo at a time, one measurement per request (see bench/speed_runner.py, which speaks
// the same protocol), so the parent can take turns between tools under the same machine load.
class Session {
  constructor() {
    this.file = null;
  }

  async handle(request) {
    switch (request.op) {
      case 'open':
        return this.open(request);
      case 'own':
        return this.own();
      case 'one':
        // sharp runs one libvips pipeline per output: clone() shares the input stream, not decoded pixels.
        return { ms: null };
      case 'save':
        return this.save(request.outputs);
      default:
        throw new Error(`unknown op ${JSON.stringify(request.op)}`);
    }
  }

  async open({ file, presets, warmup }) {
    this.file = null;
    this.input = readFileSync(file);
    this.presets = presets;
    this.last = {};
    try {
      // The first warm-up finds a file sharp cannot read before anything is timed.
      for (let i = 0; i < warmup; i++) for (const p of presets) this.last[p.name] = await render(this.input, p);
    } catch (err) {
      return unreadable(file, err);
    }
    this.file = file;
    return { file, ok: true, one_decode: false, shrink: {} };
  }

  async own() {
    if (this.file === null) throw new Error("'own' before a successful 'open'");
    const ms = {};
    const stages = {};
    for (const p of this.presets) {
      const out = await render(this.input, p);
      ms[p.name] = out.ms;
      stages[p.name] = {};
      this.last[p.name] = out;
    }
    return { ms, stages };
  }

  save(outputs) {
    mkdirSync(outputs, { recursive: true });
    const renditions = {};
    for (const p of this.presets) {
      const out = this.last[p.name];
      const output = join(outputs, `${basename(this.file)}.${p.name}.jpg`);
      writeFileSync(output, out.data);
      renditions[p.name] = { width: out.info.width, height: out.info.height, bytes: out.data.length, shrink: null, output };
    }
    return { renditions, one: null };
  }
}

async function main() {
  const mode = process.argv[2];
  if (mode === '--versions') {
    console.log(
      JSON.stringify({
        sharp: sharp.versions.sharp,
        libvips: sharp.versions.vips,
        node: process.versions.node,
        defaultConcurrency: DEFAULT_CONCURRENCY,
      }),
    );
    return;
  }
  if (mode === '--idle') {
    console.log(JSON.stringify({ peak_kb: peakKb() }));
    return;
  }
  if (mode !== '--rss' && mode !== '--serve') throw new Error('expected --versions, --idle, --rss or --serve');
  // The thread count comes as an argument, before any work: libvips sizes its pools from it.
  const concurrency = process.argv[3];
  if (concurrency !== undefined && concurrency !== 'default') sharp.concurrency(Number(concurrency));
  // A loop over the same bytes would hit libvips' operation cache, which a Lambda rendering each upload once never
  // does: measured without it.
  sharp.cache(false);
  if (mode === '--rss') {
    const { file, presets } = JSON.parse(readFileSync(0, 'utf8'));
    const input = readFileSync(file);
    try {
      for (const p of presets) await render(input, p);
    } catch (err) {
      console.log(JSON.stringify(unreadable(file, err)));
      return;
    }
    console.log(JSON.stringify({ file, ok: true, peak_kb: peakKb() }));
    return;
  }
  const session = new Session();
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim()) console.log(JSON.stringify(await session.handle(JSON.parse(line))));
  }
}

main().catch((err) => {
  console.error(`sharp_bench: ${err.message}`);
  process.exit(2);
});
