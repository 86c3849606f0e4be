// FIFO files: create one, open the reader at once and the writer after it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createFifo, openFifoReader, openFifoWriter } from 'interprocess';

export const title = 'FIFO files';

export async function run(smoke) {
  if (smoke.platform === 'win32') {
    smoke.note('Windows has no FIFO files: createFifo() must say so');
    await smoke.check('createFifo fails with ERR_INTERPROCESS_UNSUPPORTED', () => assert.rejects(createFifo('x'), { code: 'ERR_INTERPROCESS_UNSUPPORTED' }));
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoke-fifo-'));
  try {
    await smoke.check('createFifo, openFifoReader, openFifoWriter', async () => {
      const fifo = path.join(dir, 'f');
      await createFifo(fifo, { mode: 0o600 });
      assert.equal(fs.statSync(fifo).mode & 0o777, 0o600);
      const reader = openFifoReader(fifo);
      const writer = await openFifoWriter(fifo, { wait: true, timeout: 10_000 });
      writer.end('through a FIFO');
      let text = '';
      for await (const chunk of reader) text += chunk;
      assert.equal(text, 'through a FIFO');
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
