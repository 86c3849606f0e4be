declare const conn: import('interprocess').LocalSocket;
