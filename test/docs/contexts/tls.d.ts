declare const key: string;
declare const cert: string;
declare const ca: string;
declare const authkey: Buffer;
declare function handle(message: unknown): unknown;
