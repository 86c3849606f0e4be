declare const listener: import('interprocess').LocalSocketListener;
