// What the numbers were measured on, for the JSON results.
import { spawnSync } from 'node:child_process';
import os from 'node:os';

function firstLine(command, args, cwd) {
  const result = spawnSync(command, args, { encoding: 'utf8', cwd });
  return result.status === 0 ? result.stdout.split('\n')[0].trim() : null;
}

export function machineInfo(root) {
  const cpus = os.cpus();
  const dirty = firstLine('git', ['status', '--porcelain', '--untracked-files=no'], root);
  return {
    node: process.version,
    v8: process.versions.v8,
    uv: process.versions.uv,
    platform: process.platform,
    arch: process.arch,
    kernel: `${os.type()} ${os.release()}`,
    kernelVersion: os.version(),
    cpus: cpus.length,
    availableParallelism: os.availableParallelism(),
    cpuModel: cpus[0]?.model ?? null,
    cpuMHz: cpus[0]?.speed ?? null,
    totalMemoryBytes: os.totalmem(),
    loadAverage: os.loadavg(),
    cc: firstLine('cc', ['--version']),
    gitCommit: firstLine('git', ['rev-parse', 'HEAD'], root),
    gitDirty: dirty === null ? null : dirty !== '',
  };
}
