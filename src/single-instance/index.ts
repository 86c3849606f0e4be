export { PrimaryInstance, SecondInstance, singleInstance } from './single-instance.js';
export type { PrimaryInstanceEvents, SecondaryInstance, SingleInstanceOptions } from './single-instance.js';
