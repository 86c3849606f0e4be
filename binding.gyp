{
  "targets": [
    {
      "target_name": "interprocess",
      "sources": ["native/common/addon.c", "native/common/errors.c", "native/common/args.c", "native/common/watcher.c", "native/common/slab.c"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-O2"],
      "defines": ["NAPI_VERSION=8"],
      "conditions": [
        ["OS=='win'", {
          "sources": ["native/windows/os.c", "native/windows/io.c", "native/windows/operation.c", "native/windows/pipe.c",
                      "native/windows/npipe.c", "native/windows/sync.c", "native/windows/handle.c"],
          "libraries": ["ws2_32.lib", "advapi32.lib"]
        }, {
          "sources": ["native/unix/os.c", "native/unix/credentials.c", "native/unix/lock.c", "native/unix/abstract.c",
                      "native/unix/fd.c", "native/unix/usocket.c", "native/unix/message.c", "native/unix/send.c",
                      "native/unix/receive.c", "native/unix/sync.c", "native/unix/shm.c"]
        }],
        ["OS=='mac'", {
          "xcode_settings": {"OTHER_CFLAGS": ["-std=gnu11", "-Wall", "-Wextra"], "MACOSX_DEPLOYMENT_TARGET": "11.0"}
        }]
      ]
    }
  ]
}
