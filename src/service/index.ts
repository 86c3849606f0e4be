// Service managers (systemd and those speaking its protocols): socket activation, sd_notify, the watchdog.
export { LISTEN_FDS_START, listenFds } from './listen-fds.js';
export type { ListenFd, ListenFdsOptions } from './listen-fds.js';
export { notifyReady, notifyReloading, notifyStatus, notifyStopping, sdNotify, storeFds } from './notify.js';
export type { NotifyOptions, SdNotifyOptions, SdNotifyState, StoreFdsOptions } from './notify.js';
export { ServiceWatchdog, startWatchdog, watchdogTimeout } from './watchdog.js';
export type { ServiceWatchdogEvents, StartWatchdogOptions } from './watchdog.js';
