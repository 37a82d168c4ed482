// Persistent workers for CPU launches. One job at a time: a caller that
// finds the pool busy runs its chunks on its own thread instead of waiting,
// so concurrent calls never block each other and never deadlock.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln::detail {

class ThreadPool {
 public:
  using ChunkFn = void (*)(void* context, int64_t chunk);

  // `threads` counts the caller, so threads - 1 workers are started.
  explicit ThreadPool(unsigned threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  unsigned threads() const noexcept { return static_cast<unsigned>(workers_.size()) + 1; }

  // Runs fn(context, c) for every c in [0, chunks), then returns. `fn` must
  // not throw.
  void run(int64_t chunks, ChunkFn fn, void* context);

 private:
  void worker_loop();
  void run_chunks() noexcept;

  std::vector<std::thread> workers_;
  std::mutex job_owner_;  // held by the caller whose job is posted

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  uint64_t generation_ = 0;
  unsigned active_ = 0;  // workers inside the current job
  bool stopping_ = false;

  // The posted job; rewritten only while active_ == 0.
  ChunkFn fn_ = nullptr;
  void* context_ = nullptr;
  int64_t chunks_ = 0;
  std::atomic<int64_t> next_chunk_{0};
  std::atomic<int64_t> done_chunks_{0};
};

}  // namespace kiln::detail
