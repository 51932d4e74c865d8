'use strict';
// `make dev` (stage `local` only, see docs/local-dev.md): every object created in the local S3 that
// serverless-s3-local runs is delivered to each function whose EventBridge rule in serverless.yml matches it, through
// serverless-offline's local Lambda API, in the shape production delivers. serverless-s3-local's own delivery would
// need `s3` events on the functions (which production cannot have: overlapping prefixes) and sends S3 notification
// records with keys left raw, where S3 URL-encodes them; here the rule's own pattern decides, and keys are encoded as
// S3 encodes them. `custom.dev.eventShape: s3` delivers S3 notification records instead (the handlers take both).

const crypto = require('crypto');

const SHAPES = ['eventbridge', 's3'];
// s3rver's event names → what S3 puts in an EventBridge event's `reason`.
const REASONS = {
  'ObjectCreated:Put': 'PutObject',
  'ObjectCreated:Post': 'PostObject',
  'ObjectCreated:Copy': 'CopyObject',
};
const ACCOUNT = '000000000000';

// As S3 writes keys into events: URL-encoded with spaces as '+', '/' kept.
const encodeKey = (key) => encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/');

// The subset of EventBridge's pattern language that S3 rules use: lists of exact values, `prefix` and `suffix`.
// Anything else fails at start-up rather than matching wrongly.
function matches(pattern, event, where = '') {
  for (const [name, expected] of Object.entries(pattern)) {
    const value = event == null ? undefined : event[name];
    if (Array.isArray(expected)) {
      const one = (candidate) => {
        if (candidate === null || typeof candidate !== 'object') return value === candidate;
        const [operator, operand] = Object.entries(candidate)[0] || [];
        if (operator === 'prefix') return typeof value === 'string' && value.startsWith(operand);
        if (operator === 'suffix') return typeof value === 'string' && value.endsWith(operand);
        throw new Error(`EventBridge pattern operator ${JSON.stringify(candidate)} at ${where}${name} is not emulated`);
      };
      if (!expected.some(one)) return false;
    } else if (expected !== null && typeof expected === 'object') {
      if (!matches(expected, value, `${where}${name}.`)) return false;
    } else {
      throw new Error(`EventBridge pattern at ${where}${name}: expected a list or an object`);
    }
  }
  return true;
}

class KirayDevPlugin {
  constructor(serverless, options, { log } = {}) {
    this.serverless = serverless;
    this.options = options || {};
    this.log = log || { notice: (m) => console.log(m), error: (m) => console.error(m) };
    // After serverless-s3-local has started S3 (before:offline:start:init) and serverless-offline its Lambda API
    // (offline:start:init).
    this.hooks = {
      'before:offline:start:init': () => this.presentRuntime(),
      'after:offline:start:init': () => this.connect(),
    };
  }

  // serverless-offline 13 predates python3.12 in its list of runtimes, though all it does with the name is pick its
  // Python runner, which runs `python3` from $VIRTUAL_ENV (the project's .venv, with the core). In memory only, for
  // `sls offline`: the newest name it knows. The template is never built from this.
  presentRuntime() {
    const { service } = this.serverless;
    const known = 'python3.11';
    const newer = (runtime) => /^python3\.(\d+)$/.test(runtime || '') && Number(runtime.split('.')[1]) > 11;
    if (newer(service.provider.runtime)) service.provider.runtime = known;
    for (const functionKey of service.getAllFunctions()) {
      const definition = service.getFunction(functionKey);
      if (newer(definition.runtime)) definition.runtime = known;
    }
  }

  fail(message) {
    throw new this.serverless.classes.Error(`kiray-dev: ${message}`);
  }

  routes() {
    const { service } = this.serverless;
    const routes = [];
    for (const functionKey of service.getAllFunctions()) {
      const definition = service.getFunction(functionKey);
      for (const event of definition.events || []) {
        if (event.eventBridge && event.eventBridge.pattern) {
          routes.push({ functionKey, name: definition.name, pattern: event.eventBridge.pattern });
        }
      }
    }
    if (!routes.length) this.fail('no function has an EventBridge rule to emulate');
    return routes;
  }

  connect() {
    const s3local = this.serverless.pluginManager.plugins.find((p) => p.constructor.name === 'ServerlessS3Local');
    if (!s3local || !s3local.client) this.fail('serverless-s3-local is not running (list it before this plugin)');
    const dev = (this.serverless.service.custom || {}).dev || {};
    this.shape = dev.eventShape || 'eventbridge';
    if (!SHAPES.includes(this.shape)) this.fail(`custom.dev.eventShape: expected one of ${SHAPES}, got ${this.shape}`);
    const offline = (this.serverless.service.custom || {})['serverless-offline'] || {};
    const host = this.options.host || offline.host || 'localhost';
    const port = this.options.lambdaPort || offline.lambdaPort || 3002;
    this.lambdaApi = `http://${host}:${port}/2015-03-31/functions`;
    this.region = this.serverless.service.provider.region;
    this.routes = this.routes();
    s3local.client.on('event', (event) => {
      for (const record of event.Records) this.deliver(record);
    });
    const rules = this.routes.map((r) => `${r.functionKey} ← ${JSON.stringify(r.pattern)}`).join('\n  ');
    this.log.notice(`kiray-dev: S3 events go to the functions as ${this.shape} events, by their rules:\n  ${rules}`);
  }

  eventBridgeEvent(record) {
    const { bucket, object } = record.s3;
    return {
      version: '0',
      id: crypto.randomUUID(),
      'detail-type': record.eventName.startsWith('ObjectCreated:') ? 'Object Created' : 'Object Deleted',
      source: 'aws.s3',
      account: ACCOUNT,
      time: record.eventTime.replace(/\.\d+Z$/, 'Z'),
      region: this.region,
      resources: [`arn:aws:s3:::${bucket.name}`],
      detail: {
        version: '0',
        bucket: { name: bucket.name },
        object: { key: encodeKey(object.key), size: object.size, etag: object.eTag, sequencer: object.sequencer },
        'request-id': record.responseElements['x-amz-request-id'],
        requester: ACCOUNT,
        'source-ip-address': record.requestParameters.sourceIPAddress,
        reason: REASONS[record.eventName] || 'DeleteObject',
      },
    };
  }

  s3Notification(record) {
    const { bucket, object } = record.s3;
    const s3 = {
      ...record.s3,
      bucket: { ...bucket, arn: `arn:aws:s3:::${bucket.name}` },
      object: { ...object, key: encodeKey(object.key) },
    };
    return { Records: [{ ...record, awsRegion: this.region, s3 }] };
  }

  deliver(record) {
    // Rules match the EventBridge event, whichever shape the function is then given: one filter, production's.
    const routed = this.eventBridgeEvent(record);
    const event = this.shape === 'eventbridge' ? routed : this.s3Notification(record);
    const where = `s3://${record.s3.bucket.name}/${record.s3.object.key}`;
    for (const route of this.routes) {
      if (!matches(route.pattern, routed)) continue;
      this.invoke(route, event, where).catch((error) => {
        this.log.error(`kiray-dev: ${route.functionKey} ${where}: ${error.message}`);
      });
    }
  }

  // Request-response through serverless-offline's Lambda API, not awaited by S3: like EventBridge, the upload does not
  // wait for the functions. (Its `Event` invocation type would leave a failing handler as an unhandled rejection.)
  async invoke(route, event, where) {
    const started = Date.now();
    const response = await fetch(`${this.lambdaApi}/${encodeURIComponent(route.name)}/invocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-amz-invocation-type': 'RequestResponse' },
      body: JSON.stringify(event),
    });
    const body = await response.text();
    const ms = Date.now() - started;
    if (!response.ok || response.headers.get('x-amz-function-error')) {
      const detail = `(${response.status}): ${body.slice(0, 2000)}`;
      this.log.error(`kiray-dev: ${route.functionKey} ${where}: failed after ${ms} ms ${detail}`);
    } else {
      this.log.notice(`kiray-dev: ${route.functionKey} ${where}: done in ${ms} ms`);
    }
  }
}

module.exports = KirayDevPlugin;
