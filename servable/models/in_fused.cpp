// The Interaction Network's edge blocks, fused: for every receiver row r, the sum over its
// senders s of relu(relu(relu(recv[r] + send[s]) @ second) @ third), without materialising
// the (pairs x width) tensors. Receivers are cut into tiles of about `tile_rows` pairs; a
// tile's pair inputs, hidden layer and messages live in per-thread buffers that stay in
// cache, the two products are single-threaded BLAS calls, tiles run in parallel (OpenMP).
// Built at run time by servable/models/fused.py (torch.utils.cpp_extension).
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

extern "C" {  // the Fortran BLAS that the torch wheel exports (MKL on x86_64)
void sgemm(const char*, const char*, const int*, const int*, const int*, const float*,
           const float*, const int*, const float*, const int*, const float*, float*,
           const int*);
void dgemm(const char*, const char*, const int*, const int*, const int*, const double*,
           const double*, const int*, const double*, const int*, const double*, double*,
           const int*);
}

namespace {

// row-major C (n x m) = A (n x k) @ B (k x m), as column-major C^T = B^T A^T
void matmul(int n, int m, int k, const float* a, const float* b, float* c) {
  const float one = 1, zero = 0;
  sgemm("N", "N", &m, &n, &k, &one, b, &m, a, &k, &zero, c, &m);
}

void matmul(int n, int m, int k, const double* a, const double* b, double* c) {
  const double one = 1, zero = 0;
  dgemm("N", "N", &m, &n, &k, &one, b, &m, a, &k, &zero, c, &m);
}

template <typename T>
inline T relu(T v) { return v > T(0) ? v : T(0); }

template <typename T>
void edge_sum_impl(const T* recv, const T* send, const int64_t* first, const int64_t* last,
                   bool skip_self, const T* second, const T* third, T* out, int64_t n_recv,
                   int64_t W, int64_t D, int64_t tile_rows) {
  // tiles of whole receivers, each with about tile_rows pair rows
  std::vector<int64_t> starts{0};
  int64_t rows = 0, widest = 1;
  for (int64_t r = 0; r < n_recv; ++r) {
    const int64_t own = last[r] - first[r] - (skip_self && first[r] <= r && r < last[r]);
    rows += std::max<int64_t>(own, 0);
    if (rows >= tile_rows || r + 1 == n_recv) {
      widest = std::max(widest, rows);
      starts.push_back(r + 1);
      rows = 0;
    }
  }
  const int64_t n_tiles = static_cast<int64_t>(starts.size()) - 1;
  at::parallel_for(0, n_tiles, 1, [&](int64_t t0, int64_t t1) {
    std::vector<T> h1(widest * W), h2(widest * W), h3(widest * D);
    for (int64_t t = t0; t < t1; ++t) {
      int64_t row = 0;
      for (int64_t r = starts[t]; r < starts[t + 1]; ++r) {
        const T* a = recv + r * W;
        for (int64_t s = first[r]; s < last[r]; ++s) {
          if (skip_self && s == r) continue;
          const T* b = send + s * W;
          T* h = h1.data() + row * W;
          for (int64_t i = 0; i < W; ++i) h[i] = relu(a[i] + b[i]);
          ++row;
        }
      }
      if (row == 0) continue;
      matmul(row, W, W, h1.data(), second, h2.data());
      for (int64_t i = 0; i < row * W; ++i) h2[i] = relu(h2[i]);
      matmul(row, D, W, h2.data(), third, h3.data());
      row = 0;
      for (int64_t r = starts[t]; r < starts[t + 1]; ++r) {
        T* o = out + r * D;
        for (int64_t s = first[r]; s < last[r]; ++s) {
          if (skip_self && s == r) continue;
          const T* h = h3.data() + row * D;
          for (int64_t j = 0; j < D; ++j) o[j] += relu(h[j]);
          ++row;
        }
      }
    }
  });
}

}  // namespace

// recv (R, W), send (S, W); receiver r's senders are rows [first[r], last[r]) of send,
// less row r itself when skip_self; second (W, W), third (W, D). Returns (R, D).
torch::Tensor edge_sum(torch::Tensor recv, torch::Tensor send, torch::Tensor first,
                       torch::Tensor last, bool skip_self, torch::Tensor second,
                       torch::Tensor third, int64_t tile_rows) {
  TORCH_CHECK(recv.dim() == 2 && send.dim() == 2 && recv.size(1) == send.size(1),
              "recv and send must be (rows, width) of one width");
  TORCH_CHECK(second.size(0) == recv.size(1) && second.size(1) == recv.size(1) &&
              third.size(0) == recv.size(1), "second must be (W, W) and third (W, D)");
  TORCH_CHECK(first.numel() == recv.size(0) && last.numel() == recv.size(0),
              "first and last need one entry per receiver");
  TORCH_CHECK(send.scalar_type() == recv.scalar_type() &&
              second.scalar_type() == recv.scalar_type() &&
              third.scalar_type() == recv.scalar_type(), "one floating dtype for all");
  recv = recv.contiguous();
  send = send.contiguous();
  second = second.contiguous();
  third = third.contiguous();
  first = first.to(torch::kInt64).contiguous();
  last = last.to(torch::kInt64).contiguous();
  auto out = torch::zeros({recv.size(0), third.size(1)}, recv.options());
  AT_DISPATCH_FLOATING_TYPES(recv.scalar_type(), "edge_sum", [&] {
    edge_sum_impl<scalar_t>(recv.data_ptr<scalar_t>(), send.data_ptr<scalar_t>(),
                            first.data_ptr<int64_t>(), last.data_ptr<int64_t>(), skip_self,
                            second.data_ptr<scalar_t>(), third.data_ptr<scalar_t>(),
                            out.data_ptr<scalar_t>(), recv.size(0), recv.size(1),
                            third.size(1), tile_rows);
  });
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("edge_sum", &edge_sum, "summed edge-MLP messages per receiver (see in_fused.cpp)");
}
