/*
 * Named-pipe handles as values (see npipe.h for the pipes themselves): the raw handle behind a
 * descriptor, what Windows says of a handle (file type, mode flags, granted access, pipe flags),
 * adopting one as a NamedPipe, sharing one with another process (DuplicateHandle into it, the Rust
 * crate's ShareHandle), and the client's identity on a server end: impersonating it for the length
 * of one synchronous JS call, and the user its token names.
 *
 * A handle crosses to JS as a number: Windows keeps handles within 32 bits so that 32- and 64-bit
 * processes can share them (only the low 32 bits are significant), so a JS number holds any.
 */
#include "npipe.h"

#include <sddl.h>
#include <stdlib.h>

/* ntdll's query calls, looked up at run time (ntdll is not among the libraries we link). */
typedef struct {
  union {
    LONG status;
    void* pointer;
  } u;
  ULONG_PTR information;
} io_status_t;
typedef LONG(NTAPI* query_file_t)(HANDLE, io_status_t*, void*, ULONG, int);
typedef LONG(NTAPI* query_object_t)(HANDLE, int, void*, ULONG, ULONG*);
#define FILE_MODE_INFORMATION_CLASS 16 /* FileModeInformation: ULONG Mode */
#define OBJECT_BASIC_INFORMATION_CLASS 0 /* ObjectBasicInformation: ..., GrantedAccess, ... */

typedef struct {
  ULONG attributes;
  ACCESS_MASK granted_access;
  ULONG handle_count, pointer_count, reserved[10];
} object_basic_t;

static bool get_handle(napi_env env, napi_value value, HANDLE* out) {
  int64_t n;
  if (!ipc_get_int(env, value, 1, 0xffffffffLL, "handle", &n)) return false;
  *out = (HANDLE)(uintptr_t)n;
  return true;
}

static napi_value handle_value(napi_env env, HANDLE handle) {
  return ipc_int_value(env, (int64_t)((uintptr_t)handle & 0xffffffffu));
}

static FARPROC ntdll_proc(const char* name) {
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  return ntdll == NULL ? NULL : GetProcAddress(ntdll, name);
}

/* The handle's FILE_MODE_INFORMATION flags (FILE_WRITE_THROUGH, FILE_SYNCHRONOUS_IO_*...), or -1. */
static int64_t file_mode(HANDLE handle) {
  query_file_t query = (query_file_t)(void*)ntdll_proc("NtQueryInformationFile");
  io_status_t status;
  ULONG mode = 0;
  if (query == NULL || query(handle, &status, &mode, sizeof mode, FILE_MODE_INFORMATION_CLASS) < 0) return -1;
  return mode;
}

/* The access granted to this handle, or -1. */
static int64_t granted_access(HANDLE handle) {
  query_object_t query = (query_object_t)(void*)ntdll_proc("NtQueryObject");
  object_basic_t basic;
  ULONG length = 0;
  if (query == NULL || query(handle, OBJECT_BASIC_INFORMATION_CLASS, &basic, sizeof basic, &length) < 0) return -1;
  return basic.granted_access;
}

/* fdHandle(fd) -> the handle behind a descriptor of node.exe's C runtime (EBADF if none). */
static napi_value hnd_fd_handle(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!ipc_fd_args(env, info, 1, argv, &fd)) return NULL;
  HANDLE handle = uv_get_osfhandle(fd);
  if (handle == INVALID_HANDLE_VALUE || handle == NULL) {
    ipc_throw_errno(env, ERROR_INVALID_HANDLE, "_get_osfhandle");
    return NULL;
  }
  return handle_value(env, handle);
}

/*
 * describe(handle) -> { fileType, mode, access, flags }: GetFileType, the FILE_MODE_INFORMATION
 * flags and the granted access (-1 where Windows will not say), and for a pipe GetNamedPipeInfo's
 * flags (PIPE_SERVER_END, PIPE_TYPE_MESSAGE; -1 if not a pipe). EBADF for a handle not open.
 */
static napi_value hnd_describe(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  HANDLE handle;
  if (!ipc_args(env, info, 1, argv) || !get_handle(env, argv[0], &handle)) return NULL;
  SetLastError(NO_ERROR);
  DWORD type = GetFileType(handle);
  if (type == FILE_TYPE_UNKNOWN && GetLastError() != NO_ERROR) {
    ipc_throw_errno(env, GetLastError(), "GetFileType");
    return NULL;
  }
  DWORD flags = 0;
  bool pipe = type == FILE_TYPE_PIPE && GetNamedPipeInfo(handle, &flags, NULL, NULL, NULL);
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, ipc_set_int(env, result, "fileType", type));
  NAPI_CALL(env, ipc_set_int(env, result, "mode", file_mode(handle)));
  NAPI_CALL(env, ipc_set_int(env, result, "access", granted_access(handle)));
  NAPI_CALL(env, ipc_set_int(env, result, "flags", pipe ? (int64_t)flags : -1));
  return result;
}

/*
 * adopt(handle, messageReadMode) -> a NamedPipe that owns the handle (checked by the caller). The
 * message read mode is set only if the handle is not in it already: setting it needs
 * FILE_WRITE_ATTRIBUTES, which a read-only handle of someone else's may lack.
 */
static napi_value hnd_adopt(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  HANDLE handle;
  bool message = false;
  if (!ipc_args(env, info, 2, argv) || !get_handle(env, argv[0], &handle) ||
      !ipc_get_bool(env, argv[1], "messageReadMode", &message)) {
    return NULL;
  }
  DWORD state = 0;
  bool already = GetNamedPipeHandleStateW(handle, &state, NULL, NULL, NULL, NULL, 0) && (state & PIPE_READMODE_MESSAGE) != 0;
  if (message && !already) {
    DWORD mode = PIPE_READMODE_MESSAGE;
    if (!SetNamedPipeHandleState(handle, &mode, NULL, NULL)) {
      ipc_throw_errno(env, GetLastError(), "SetNamedPipeHandleState");
      return NULL;
    }
  }
  return pipe_wrap(env, handle);
}

/* duplicate(handle) -> a new handle of this process to the same pipe (same access, not inherited). */
static napi_value hnd_duplicate(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  HANDLE handle, copy;
  if (!ipc_args(env, info, 1, argv) || !get_handle(env, argv[0], &handle)) return NULL;
  if (!DuplicateHandle(GetCurrentProcess(), handle, GetCurrentProcess(), &copy, 0, FALSE, DUPLICATE_SAME_ACCESS)) {
    ipc_throw_errno(env, GetLastError(), "DuplicateHandle");
    return NULL;
  }
  return handle_value(env, copy);
}

/* closeHandle(handle): closes a raw handle (one adopted or duplicated that is not wanted after all). */
static napi_value hnd_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  HANDLE handle;
  if (!ipc_args(env, info, 1, argv) || !get_handle(env, argv[0], &handle)) return NULL;
  if (!CloseHandle(handle)) ipc_throw_errno(env, GetLastError(), "CloseHandle");
  return NULL;
}

/*
 * share(handle, pid) -> the handle's value in process `pid`: a duplicate made there (same access,
 * not inheritable), which that process owns and adopts. Ours stays open.
 */
static napi_value hnd_share(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  HANDLE handle, copy;
  int64_t pid;
  if (!ipc_args(env, info, 2, argv) || !get_handle(env, argv[0], &handle) ||
      !ipc_get_int(env, argv[1], 1, 0xffffffffLL, "pid", &pid)) {
    return NULL;
  }
  HANDLE process = OpenProcess(PROCESS_DUP_HANDLE, FALSE, (DWORD)pid);
  if (process == NULL) {
    ipc_throw_errno(env, GetLastError(), "OpenProcess");
    return NULL;
  }
  BOOL ok = DuplicateHandle(GetCurrentProcess(), handle, process, &copy, 0, FALSE, DUPLICATE_SAME_ACCESS);
  DWORD err = GetLastError();
  CloseHandle(process);
  if (!ok) {
    ipc_throw_errno(env, err, "DuplicateHandle");
    return NULL;
  }
  return handle_value(env, copy);
}

/* A thread that cannot go back to its own token must not run on as someone else. */
static void revert_or_die(void) {
  if (!RevertToSelf()) {
    napi_fatal_error("interprocess", NAPI_AUTO_LENGTH, "RevertToSelf failed after impersonating a named-pipe client",
                     NAPI_AUTO_LENGTH);
  }
}

/*
 * impersonate(handle, fn) -> fn's result: ImpersonateNamedPipeClient, fn() on this thread, then
 * RevertToSelf, also when fn throws (its exception is left pending, so JS sees it).
 */
static napi_value hnd_impersonate(napi_env env, napi_callback_info info) {
  napi_value argv[2], global, result = NULL;
  HANDLE handle;
  if (!ipc_args(env, info, 2, argv) || !get_handle(env, argv[0], &handle) || !pipe_is_callback(env, argv[1])) return NULL;
  NAPI_CALL(env, napi_get_global(env, &global));
  if (!ImpersonateNamedPipeClient(handle)) {
    ipc_throw_errno(env, GetLastError(), "ImpersonateNamedPipeClient");
    return NULL;
  }
  napi_status status = napi_call_function(env, global, argv[1], 0, NULL, &result);
  revert_or_die();
  return status == napi_ok ? result : NULL;
}

/* The user SID of a token as SDDL text ("S-1-5-21-..."), and whether it holds Administrators enabled. */
static napi_value token_user(napi_env env, HANDLE token) {
  union {
    TOKEN_USER user;
    char space[SECURITY_MAX_SID_SIZE + sizeof(TOKEN_USER)];
  } buffer;
  DWORD length = 0;
  LPWSTR text = NULL;
  if (!GetTokenInformation(token, TokenUser, &buffer, sizeof buffer, &length) ||
      !ConvertSidToStringSidW(buffer.user.User.Sid, &text)) {
    ipc_throw_errno(env, GetLastError(), "GetTokenInformation");
    return NULL;
  }
  BYTE admins_space[SECURITY_MAX_SID_SIZE];
  DWORD admins_size = sizeof admins_space;
  BOOL admin = FALSE;
  HANDLE query = NULL;
  /* CheckTokenMembership wants an impersonation token: a process token is duplicated as one. */
  if (CreateWellKnownSid(WinBuiltinAdministratorsSid, NULL, admins_space, &admins_size) &&
      DuplicateToken(token, SecurityIdentification, &query)) {
    if (!CheckTokenMembership(query, admins_space, &admin)) admin = FALSE;
    CloseHandle(query);
  }
  napi_value result, sid;
  napi_status status = napi_create_string_utf16(env, (const char16_t*)text, NAPI_AUTO_LENGTH, &sid);
  LocalFree(text);
  NAPI_CALL(env, status);
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_set_named_property(env, result, "sid", sid));
  NAPI_CALL(env, napi_set_named_property(env, result, "admin", ipc_bool_value(env, admin)));
  return result;
}

/*
 * tokenUser(which) -> { sid, admin } of this thread's token ('thread': null when the thread
 * impersonates no one) or of this process's ('process').
 */
static napi_value hnd_token_user(napi_env env, napi_callback_info info) {
  napi_value argv[1], result = NULL;
  bool thread = false;
  if (!ipc_args(env, info, 1, argv) || !ipc_get_bool(env, argv[0], "thread", &thread)) return NULL;
  HANDLE token = NULL;
  BOOL ok = thread ? OpenThreadToken(GetCurrentThread(), TOKEN_QUERY | TOKEN_DUPLICATE, TRUE, &token)
                   : OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY | TOKEN_DUPLICATE, &token);
  if (!ok) {
    DWORD err = GetLastError();
    if (thread && err == ERROR_NO_TOKEN) {
      napi_get_null(env, &result);
      return result;
    }
    ipc_throw_errno(env, err, thread ? "OpenThreadToken" : "OpenProcessToken");
    return NULL;
  }
  result = token_user(env, token);
  CloseHandle(token);
  return result;
}

/* The client's token on a server end: impersonated (the connection's own identity), else the
 * client process's (an anonymous client, or a Windows that does not impersonate). NULL if neither. */
static HANDLE client_token(HANDLE pipe, DWORD* err) {
  HANDLE token = NULL;
  if (ImpersonateNamedPipeClient(pipe)) {
    BOOL ok = OpenThreadToken(GetCurrentThread(), TOKEN_QUERY | TOKEN_DUPLICATE, TRUE, &token);
    *err = ok ? 0 : GetLastError();
    revert_or_die();
    if (ok) return token;
  } else {
    *err = GetLastError();
  }
  ULONG pid = 0;
  if (!GetNamedPipeClientProcessId(pipe, &pid)) return NULL;
  HANDLE process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
  if (process == NULL) return NULL;
  if (!OpenProcessToken(process, TOKEN_QUERY | TOKEN_DUPLICATE, &token)) token = NULL;
  CloseHandle(process);
  return token;
}

/* clientUser(handle) -> { sid, admin } of the client of a server end (see client_token). */
static napi_value hnd_client_user(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  HANDLE handle;
  if (!ipc_args(env, info, 1, argv) || !get_handle(env, argv[0], &handle)) return NULL;
  DWORD err = 0;
  HANDLE token = client_token(handle, &err);
  if (token == NULL) {
    ipc_throw_errno(env, err != 0 ? err : GetLastError(), "OpenThreadToken");
    return NULL;
  }
  napi_value result = token_user(env, token);
  CloseHandle(token);
  return result;
}

napi_status hnd_init(napi_env env, napi_value np) {
  const struct {
    const char* name;
    napi_callback fn;
  } table[] = {
      {"fdHandle", hnd_fd_handle},       {"describe", hnd_describe}, {"adopt", hnd_adopt},
      {"duplicate", hnd_duplicate},      {"closeHandle", hnd_close}, {"share", hnd_share},
      {"impersonate", hnd_impersonate},  {"tokenUser", hnd_token_user}, {"clientUser", hnd_client_user},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    napi_status status = ipc_set_fn(env, np, table[i].name, table[i].fn);
    if (status != napi_ok) return status;
  }
  return napi_ok;
}
