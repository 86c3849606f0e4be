declare const socket: import('interprocess').UnixSocket;
declare const to: import('interprocess').LocalSocketName;
declare const data: string;
declare const fds: number[];
declare const messages: string[];
declare function onError(error: unknown): void;
