// threadpool.h — a small persistent pool that runs parallel_for over task indices.
//
// The caller's thread takes part, so a pool of n threads starts n-1 workers. Workers
// spin briefly before sleeping so back-to-back ops during decode do not pay a futex
// wake-up each; they sleep when idle so an idle engine costs no CPU.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace motif {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return n_threads_; }

  // Runs fn(task, thread) for task in [0, n_tasks), spread over the pool; returns when all
  // are done. `thread` is in [0, n_threads) and is stable within one call (for scratch).
  // Exceptions thrown by fn are rethrown here (the first one).
  void parallel_for(int64_t n_tasks, const std::function<void(int64_t task, int thread)>& fn);

  // The number of hardware threads to use by default (physical-core heuristic: the
  // hardware concurrency, at least 1).
  static int default_threads();

 private:
  void worker_main(int thread);
  void run_tasks(int thread);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> next_task_{0};
  std::atomic<int> active_{0};
  int64_t n_tasks_ = 0;
  const std::function<void(int64_t, int)>* fn_ = nullptr;
  std::exception_ptr error_;
  std::mutex error_mutex_;
  bool stop_ = false;
};

}  // namespace motif
