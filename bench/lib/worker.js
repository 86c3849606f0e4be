// Plumbing for bench worker processes (the Node side of a measurement).

/** Prints one JSON line for the harness; with `exit`, exits once it is written. Resolves once written. */
export function report(value, exit = false) {
  return new Promise((resolve) => {
    process.stdout.write(`${JSON.stringify(value)}\n`, () => {
      if (exit) process.exit(0);
      resolve();
    });
  });
}

/** Reports an error on stderr (the harness shows it) and exits non-zero. */
export function fail(error) {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exit(1);
}

/**
 * Exits if the harness dies (its end of our stdin closes), and after a generous deadline, so a
 * worker never outlives a killed or hung run. Neither keeps the event loop alive. A worker whose
 * stdin is its data channel (a child_process stdio peer) passes `watchStdin: false`: the end of
 * its data tells it the same.
 */
export function exitWhenOrphaned({ deadlineMs = 300_000, watchStdin = true } = {}) {
  if (watchStdin) {
    process.stdin.on('end', () => process.exit(3));
    process.stdin.on('error', () => process.exit(3));
    process.stdin.resume();
    process.stdin.unref?.();
  }
  setTimeout(() => fail(new Error(`worker still running after ${deadlineMs} ms`)), deadlineMs).unref();
}
