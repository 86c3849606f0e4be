/**
 * Just enough of the Mach-O format to check a macOS prebuild on Linux, where it cannot run: the
 * architecture, the file type, the minimum macOS, the libraries it loads, and its symbols with
 * where each undefined one is to be found (a library, or looked up in the host at load time).
 * 64-bit little-endian images only (x86_64 and arm64), which is all we build.
 */
import fs from 'node:fs';

const MH_MAGIC_64 = 0xfeedfacf;
const LC_SYMTAB = 0x2;
const LC_LOAD_DYLIB = 0xc;
const LC_ID_DYLIB = 0xd;
const LC_BUILD_VERSION = 0x32;
const N_STAB = 0xe0;
const N_PEXT = 0x10;
const N_TYPE = 0x0e;
const N_EXT = 0x01;
const N_UNDF = 0x0;
const N_SECT = 0xe;
/** The library ordinal of a symbol the dynamic linker looks up in every loaded image (`-undefined dynamic_lookup`). */
export const DYNAMIC_LOOKUP_ORDINAL = 0xfe;

export const CPU_TYPE = { x64: 0x01000007, arm64: 0x0100000c } as const;
export const FILE_TYPE = { dylib: 6, bundle: 8 } as const;
export const PLATFORM_MACOS = 1;

export interface MachO {
  cpuType: number;
  fileType: number;
  /** LC_BUILD_VERSION: the platform and the minimum OS version as "major.minor". */
  platform?: number;
  minOs?: string;
  /** LC_ID_DYLIB's install name, if any. */
  installName?: string;
  /** LC_LOAD_DYLIB names, in order: a symbol's library ordinal N is the N-th of these. */
  libraries: string[];
  /** External symbols this image defines and exports (private externs left out). */
  exported: string[];
  /** External symbols it needs, with their library ordinal. */
  undefined: Array<{ name: string; ordinal: number }>;
}

export function readMachO(file: string): MachO {
  const b = fs.readFileSync(file);
  if (b.readUInt32LE(0) !== MH_MAGIC_64) throw new Error(`${file} is not a 64-bit little-endian Mach-O image`);
  const image: MachO = { cpuType: b.readInt32LE(4), fileType: b.readUInt32LE(12), libraries: [], exported: [], undefined: [] };
  const commands = b.readUInt32LE(16);
  const cstring = (at: number): string => b.toString('latin1', at, b.indexOf(0, at));
  let offset = 32;
  for (let i = 0; i < commands; i++) {
    const cmd = b.readUInt32LE(offset) & 0x7fffffff; // LC_REQ_DYLD is a flag bit
    const size = b.readUInt32LE(offset + 4);
    if (cmd === LC_LOAD_DYLIB) image.libraries.push(cstring(offset + b.readUInt32LE(offset + 8)));
    if (cmd === LC_ID_DYLIB) image.installName = cstring(offset + b.readUInt32LE(offset + 8));
    if (cmd === LC_BUILD_VERSION) {
      image.platform = b.readUInt32LE(offset + 8);
      const v = b.readUInt32LE(offset + 12); // xxxx.yy.zz
      image.minOs = `${v >>> 16}.${(v >>> 8) & 0xff}`;
    }
    if (cmd === LC_SYMTAB) {
      const [symoff, nsyms, stroff] = [b.readUInt32LE(offset + 8), b.readUInt32LE(offset + 12), b.readUInt32LE(offset + 16)];
      for (let s = 0; s < nsyms; s++) {
        const at = symoff + s * 16;
        const type = b[at + 4]!;
        if (type & N_STAB || !(type & N_EXT)) continue;
        const name = cstring(stroff + b.readUInt32LE(at));
        if ((type & N_TYPE) === N_UNDF) image.undefined.push({ name, ordinal: (b.readUInt16LE(at + 6) >> 8) & 0xff });
        else if ((type & N_TYPE) === N_SECT && !(type & N_PEXT)) image.exported.push(name);
      }
    }
    offset += size;
  }
  return image;
}

/** Every symbol a text-based stub (.tbd, as the macOS SDK ships libSystem) lists, as a set of words. */
export function tbdSymbols(file: string): Set<string> {
  return new Set(fs.readFileSync(file, 'utf8').match(/[\w$.]+/g) ?? []);
}
