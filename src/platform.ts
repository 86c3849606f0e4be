/** Facts about the platform that shape names and features. */
export type Platform = NodeJS.Platform;

export const isWindows = process.platform === 'win32';

/**
 * Usable bytes of `sun_path` (its size less the terminating NUL): 108 - 1 on Linux and most
 * others, 104 - 1 on macOS and the BSDs.
 */
export function sunPathMax(platform: Platform = process.platform): number {
  switch (platform) {
    case 'darwin':
    case 'freebsd':
    case 'openbsd':
    case 'netbsd' as Platform:
      return 103;
    default:
      return 107;
  }
}

/**
 * The JavaScript runtime this runs in. Bun and Deno load the addon and implement most of `node:`,
 * but not all of it the same way: the few places that differ choose their path by this (see the
 * README's support table).
 */
export const runtime: 'node' | 'bun' | 'deno' =
  typeof process.versions.bun === 'string' ? 'bun' : typeof process.versions.deno === 'string' ? 'deno' : 'node';
