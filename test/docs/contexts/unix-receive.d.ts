declare const socket: import('interprocess').UnixSocket;
