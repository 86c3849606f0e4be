/** Signals: a typed API over what each OS really offers. */
export { onSignal, sendSignal, sendSignalToGroup, signals } from './signal.js';
export type { OnSignalOptions, SignalInfo, SignalName, SignalSubscription } from './signal.js';
