// Command-line flags of bench/run.js.
import { parseArgs } from 'node:util';

export const USAGE = `Usage: npm run bench -- [--quick] [--only=<substring>] [--json=<path>] [--reps=<n>] [--pipe-size=<bytes>]
  --quick              short run (smaller sizes): a smoke check
  --only=<substring>   run only rows whose id contains the substring (e.g. latency, pinned, pipe/),
                       or one of several, separated by commas
  --json=<path>        write the JSON results there (default: bench/results/latest.json plus a
                       timestamped copy)
  --reps=<n>           repetitions of each measurement; the median is reported (default 5, quick 3)
  --max-reps=<n>       repetitions at most, for a row whose runs spread over 25% (default twice --reps)
  --pipe-size=<bytes>  pipe buffer of interprocess and C in the pipe rows (default: the size pipe()
                       gives by default), e.g. to choose that default`;

export function parseFlags(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      json: { type: 'string' },
      reps: { type: 'string' },
      'max-reps': { type: 'string' },
      'pipe-size': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const reps = values.reps === undefined ? (values.quick ? 3 : 5) : Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps must be a positive integer; got ${values.reps}`);
  const maxReps = values['max-reps'] === undefined ? 2 * reps : Number(values['max-reps']);
  if (!Number.isInteger(maxReps) || maxReps < reps) throw new Error(`--max-reps must be an integer of at least --reps (${reps}); got ${values['max-reps']}`);
  const pipeSize = values['pipe-size'] === undefined ? null : Number(values['pipe-size']);
  if (pipeSize !== null && !(Number.isInteger(pipeSize) && pipeSize > 0)) throw new Error(`--pipe-size must be a positive number of bytes; got ${values['pipe-size']}`);
  return { quick: values.quick, only: values.only ?? null, json: values.json ?? null, reps, maxReps, pipeSize, help: values.help };
}
