'use strict';
// Builds and verifies the native layer whenever Serverless packages (`sls package`, `sls deploy`), the way
// serverless-python-requirements hooks packaging: nobody has to remember `make layer`, and a binary the gate
// refuses (macOS Mach-O, aarch64, glibc newer than 2.17, non-abi3) stops the deploy before anything is uploaded.
// It also points `sls invoke local` at the project's virtualenv, where `make setup` installed the core, because
// invoke local runs `python3` from PATH and never mounts layers.

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

class KirayLayerPlugin {
  constructor(serverless, options, { log } = {}) {
    this.serverless = serverless;
    this.options = options || {};
    this.log = log || { notice: (m) => console.log(m), error: (m) => console.error(m) };
    this.root = serverless.config.servicePath;
    this.hooks = {
      'before:package:initialize': () => this.buildLayer(),
      'before:invoke:local:invoke': () => this.useProjectVenv(),
    };
  }

  venvPython() {
    const candidates = [
      path.join(this.root, '.venv', 'bin', 'python'),
      process.env.VIRTUAL_ENV && path.join(process.env.VIRTUAL_ENV, 'bin', 'python'),
    ].filter(Boolean);
    return candidates.find((p) => fs.existsSync(p));
  }

  fail(message) {
    throw new this.serverless.classes.Error(`kiray-layer: ${message}`);
  }

  buildLayer() {
    const python = this.venvPython();
    if (!python) this.fail('no project virtualenv with maturin and ziglang: run `make setup` first');
    this.log.notice('kiray-layer: building and verifying the native layer');
    // The architecture is one setting (provider.architecture); the build and the gate follow it.
    const architecture = this.serverless.service.provider.architecture || 'x86_64';
    const result = spawnSync(python, [path.join(this.root, 'layer', 'build.py'), '--architecture', architecture], {
      cwd: this.root,
      stdio: 'inherit',
    });
    if (result.error) this.fail(`could not run ${python}: ${result.error.message}`);
    if (result.status !== 0) this.fail('the layer build or its binary gate failed (see above); nothing was packaged');
    this.recordLayerHash();
  }

  // The build is reproducible, so the zip's sha256 names the commit it came from. It goes into the deployed stack
  // twice: at the end of the layer version's description (visible on the layer in the console and in
  // `aws lambda get-layer-version`) and as a stack output, `<Layer logical id>Sha256`.
  recordLayerHash() {
    const artifact = path.join(this.root, 'layer', 'dist', 'kiray-imaging-layer.zip');
    const sha = fs.readFileSync(`${artifact.slice(0, -'.zip'.length)}.sha256`, 'utf8').split(/\s+/)[0];
    if (!/^[0-9a-f]{64}$/.test(sha)) this.fail(`layer/dist/kiray-imaging-layer.sha256 holds no sha256: ${sha}`);
    const service = this.serverless.service;
    const naming = this.serverless.getProvider('aws').naming;
    for (const [name, layer] of Object.entries(service.layers || {})) {
      const packaged = layer.package && layer.package.artifact;
      if (!packaged || path.resolve(this.root, packaged) !== artifact) continue;
      const base = (layer.description || '').replace(/ ?sha256 [0-9a-f]{64}$/, '');
      layer.description = `${base} sha256 ${sha}`.trim();
      // Lambda refuses a layer description over 256 characters; better to fail here than in CloudFormation.
      if (layer.description.length > 256) this.fail(`layers.${name}.description is too long for its sha256`);
      service.resources = service.resources || {};
      service.resources.Outputs = service.resources.Outputs || {};
      service.resources.Outputs[`${naming.getLambdaLayerLogicalId(name)}Sha256`] = {
        Description: `sha256 of ${packaged}, the content of layer ${name} (layer/build.py builds it reproducibly)`,
        Value: sha,
      };
      this.log.notice(`kiray-layer: layer ${name} sha256 ${sha}`);
    }
  }

  useProjectVenv() {
    if (process.env.VIRTUAL_ENV) return;
    const venv = path.join(this.root, '.venv');
    if (!fs.existsSync(path.join(venv, 'bin', 'python'))) {
      this.fail('`sls invoke local` needs the core installed in .venv: run `make setup` first');
    }
    // osls's invoke local puts $VIRTUAL_ENV/bin first on PATH before spawning python3.
    process.env.VIRTUAL_ENV = venv;
  }
}

module.exports = KirayLayerPlugin;
