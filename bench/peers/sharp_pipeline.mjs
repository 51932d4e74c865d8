// The production sharp pipeline being replaced (the seed's engine), in one place for both sharp peers:
// sharp_render.mjs (quality report) and sharp_bench.mjs (speed), so they cannot drift apart.

// libvips' wording when it has no loader, or no codec, for an input: a missing format rather than a failure.
export const UNSUPPORTED = /unsupported image format|not been built in|unsupported codec|no decoder|unsupported feature/i;

export function pipeline(sharp, input, job) {
  const image = sharp(input).rotate();
  if (job.fit === 'cover') {
    image.resize(job.width, job.height, { fit: 'cover', position: 'centre', withoutEnlargement: true });
  } else if (job.fit === 'inside') {
    image.resize(job.width, job.height, { fit: 'inside', withoutEnlargement: true });
  } else {
    throw new Error(`expected fit 'cover' or 'inside', got ${JSON.stringify(job.fit)}`);
  }
  return image.flatten({ background: '#ffffff' }).jpeg({ quality: job.quality });
}
