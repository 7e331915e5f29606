// fuzz-common.h — what the libFuzzer targets in test/fuzz/ share: the one rule for outcomes.
//
// A parser handed arbitrary bytes may either succeed (and then its result must satisfy the
// invariants each target checks with FUZZ_EXPECT) or throw motif::Error. Anything else is a
// finding: a crash or sanitizer report (caught by libFuzzer/ASan/UBSan), another exception type
// (it escapes LLVMFuzzerTestOneInput and aborts), or a broken invariant (FUZZ_EXPECT aborts).
#pragma once

#include <cstdio>
#include <cstdlib>

#include "../../native/core/status.h"

// Aborts with a message naming the broken invariant, which libFuzzer reports as a crash and saves
// the input for.
#define FUZZ_EXPECT(cond)                                                                     \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

// Runs `body`; motif::Error is the expected way to reject input, every other exception aborts.
template <typename F>
inline void fuzz_run(F&& body) {
  try {
    body();
  } catch (const motif::Error&) {
    // rejected cleanly: the documented outcome for bad input
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: unexpected exception (not motif::Error): %s\n", e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "fuzz: unexpected non-std exception\n");
    std::abort();
  }
}
