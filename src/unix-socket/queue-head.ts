/**
 * @internal The one compaction rule of the queues read from a head index (the send queue's
 * parallel arrays, the receive queue): once every item is taken, start over with fresh arrays
 * ('reset': truncating a long array in place makes V8's later pushes to it markedly slower, a
 * measured 1.7x on the seqpacket send path); once taken items are more than half of a long queue,
 * drop them ('splice'), so a queue that never empties does not grow forever and a short one is
 * not spliced on every take; otherwise nothing (null).
 */
export function compaction(head: number, length: number): 'reset' | 'splice' | null {
  if (head === length) return 'reset';
  if (head > 1024 && head * 2 > length) return 'splice';
  return null;
}
