export { PrimaryInstance, SecondInstance } from './primary.js';
export type { PrimaryInstanceEvents } from './primary.js';
export type { SecondaryInstance } from './secondary.js';
export { singleInstance } from './single-instance.js';
export type { SingleInstanceOptions } from './single-instance.js';
