#!/usr/bin/env node
// Renders benchmark jobs with sharp, configured as the production pipeline we are replacing was: auto-orient,
// resize, flatten onto white, JPEG at the preset's quality, sharp's defaults for everything else.
//
//   node sharp_render.mjs jobs.json      (a file holding a JSON array of jobs)
//   node sharp_render.mjs '[{...}]'      (the array itself as the argument)
//   node sharp_render.mjs < jobs.json    (the array on stdin)
//   node sharp_render.mjs --versions     (prints {"sharp": ..., "libvips": ...})
//
// A job is {input, output, preset, width, height, fit, quality}: the caller passes the preset's numbers so that
// they live in one place (python/kiray_imaging/presets.py) and cannot drift from ours.
// Prints one JSON line per job, in order: {ok: true, width, height, bytes, ms} or {ok: false, reason, unsupported}.
import { readFileSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';
import { UNSUPPORTED, pipeline as sharedPipeline } from './sharp_pipeline.mjs';

const pipeline = (input, job) => sharedPipeline(sharp, input, job);

// One libvips worker per image, like our core's single-threaded render: a fair fight on the 2-core Lambda.
sharp.concurrency(1);

function readJobs(arg) {
  if (arg === undefined || arg === '-') return JSON.parse(readFileSync(0, 'utf8'));
  if (arg.trimStart().startsWith('[')) return JSON.parse(arg);
  return JSON.parse(readFileSync(arg, 'utf8'));
}

function checkJob(job, index) {
  for (const key of ['input', 'output', 'preset', 'fit']) {
    if (typeof job[key] !== 'string') throw new Error(`job ${index}: expected a string ${key}`);
  }
  for (const key of ['width', 'height', 'quality']) {
    if (!Number.isInteger(job[key]) || job[key] < 1) throw new Error(`job ${index}: expected a positive integer ${key}`);
  }
}

async function main() {
  const arg = process.argv[2];
  if (arg === '--versions') {
    console.log(JSON.stringify({ sharp: sharp.versions.sharp, libvips: sharp.versions.vips }));
    return;
  }
  const jobs = readJobs(arg);
  if (!Array.isArray(jobs)) throw new Error('expected a JSON array of jobs');
  jobs.forEach(checkJob);
  for (const job of jobs) {
    const head = { input: job.input, preset: job.preset, output: job.output };
    let input;
    try {
      input = readFileSync(job.input);
    } catch (err) {
      console.log(JSON.stringify({ ...head, ok: false, reason: err.message, unsupported: false }));
      continue;
    }
    try {
      const start = process.hrtime.bigint();
      const { data, info } = await pipeline(input, job).toBuffer({ resolveWithObject: true });
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      writeFileSync(job.output, data);
      console.log(JSON.stringify({ ...head, ok: true, width: info.width, height: info.height, bytes: data.length, ms }));
    } catch (err) {
      // libvips stacks one line per layer it failed through; the one naming the missing codec is the news.
      const lines = String(err.message).trim().split('\n');
      const reason = lines.find((line) => UNSUPPORTED.test(line)) ?? lines[0];
      console.log(JSON.stringify({ ...head, ok: false, reason, unsupported: UNSUPPORTED.test(err.message) }));
    }
  }
}

main().catch((err) => {
  console.error(`sharp_render: ${err.message}`);
  process.exit(2);
});
