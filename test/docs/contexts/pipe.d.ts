declare const sender: import('interprocess').PipeSender;
declare const receiver: import('interprocess').PipeReceiver;
declare const buffer: Buffer;
