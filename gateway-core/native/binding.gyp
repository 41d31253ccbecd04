{
  # Built by `npm ci` through gateway-core's install script (node-gyp rebuild --directory native).
  "targets": [
    {
      "target_name": "braid_native",
      "sources": ["src/braid_native.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      # C++ exceptions stay off: errors are raised with ThrowAsJavaScriptException and an early return.
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "cflags_cc": ["-std=c++17", "-fno-exceptions"]
    }
  ]
}
