/**
 * @internal The one compaction step of the queues read from a head index (the send queue's
 * parallel arrays, the receive inbox): taken items are dropped once all are taken, or once they
 * are more than half of a long queue (so a queue that never empties does not grow forever, and
 * a short one is not spliced on every take). Returns the new head (0 when it compacted).
 */
export function compactHead(arrays: ReadonlyArray<unknown[] | null>, head: number, length: number): number {
  if (head === length) {
    for (const array of arrays) if (array !== null) array.length = 0;
    return 0;
  }
  if (head > 1024 && head * 2 > length) {
    for (const array of arrays) array?.splice(0, head);
    return 0;
  }
  return head;
}
