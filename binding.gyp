# binding.gyp — the CPU-only addon through node-gyp, for machines without CMake.
# CMakeLists.txt is the canonical build. Both read their source lists from native/sources.json,
# so they cannot drift; test/unit/build-lists.test.ts checks the lists against the tree.
{
  "targets": [
    {
      "target_name": "motif_native",
      "sources": [
        "<!@(node -p \"const s=require('./native/sources.json'); s.core.concat(s.addon).join(' ')\")"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "MOTIF_VERSION=\"<!(node -p \"require('./package.json').version\")\""
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions"],
      "conditions": [
        ["OS=='linux' and target_arch=='x64'", { "cflags_cc": ["-march=native"] }],
        ["OS=='mac'", {
          "xcode_settings": {
            "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "MACOSX_DEPLOYMENT_TARGET": "11.0"
          }
        }]
      ]
    }
  ]
}
