/*
 * Linked into the win32 prebuild only (node-gyp adds its own copy of this to source builds).
 * The prebuild imports Node-API and libuv from "node.exe" through a delay-load import library;
 * this hook answers that load with the running executable itself, so the addon also loads in a
 * node.exe that was renamed, or in another executable that embeds Node (libnode.dll).
 */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#include <delayimp.h>
#include <string.h>

static FARPROC WINAPI load_exe_hook(unsigned int event, PDelayLoadInfo info) {
  if (event != dliNotePreLoadLibrary || _stricmp(info->szDll, "node.exe") != 0) return NULL;
  HMODULE module = GetModuleHandleA("libnode.dll");
  if (module == NULL) module = GetModuleHandleA(NULL);
  return (FARPROC)module;
}

PfnDliHook __pfnDliNotifyHook2 = load_exe_hook;
