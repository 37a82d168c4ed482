#include "thread_pool.h"

namespace kiln::detail {

ThreadPool::ThreadPool(unsigned threads) {
  const unsigned workers = threads > 1 ? threads - 1 : 0;
  workers_.reserve(workers);
  for (unsigned i = 0; i < workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::run_chunks() noexcept {
  for (;;) {
    const int64_t chunk = next_chunk_.fetch_add(1, std::memory_order_relaxed);
    if (chunk >= chunks_) return;
    fn_(context_, chunk);
    done_chunks_.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
    if (stopping_) return;
    seen = generation_;
    ++active_;
    lock.unlock();
    run_chunks();
    lock.lock();
    if (--active_ == 0) idle_.notify_all();
  }
}

void ThreadPool::run(int64_t chunks, ChunkFn fn, void* context) {
  if (chunks <= 0) return;
  std::unique_lock owner(job_owner_, std::try_to_lock);
  if (workers_.empty() || chunks == 1 || !owner.owns_lock()) {
    for (int64_t c = 0; c < chunks; ++c) fn(context, c);
    return;
  }
  {
    std::unique_lock lock(mutex_);
    // A worker that woke late for the previous job may still be reading its
    // fields; wait until it has left.
    idle_.wait(lock, [&] { return active_ == 0; });
    fn_ = fn;
    context_ = context;
    chunks_ = chunks;
    next_chunk_.store(0, std::memory_order_relaxed);
    done_chunks_.store(0, std::memory_order_relaxed);
    ++generation_;
  }
  wake_.notify_all();
  run_chunks();
  // Every chunk is claimed; wait for those still running elsewhere, and for
  // every worker to leave so the job's fields can be rewritten.
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] {
    return active_ == 0 && done_chunks_.load(std::memory_order_acquire) == chunks_;
  });
}

}  // namespace kiln::detail
