// The generated dispatcher's protocol (see plugin/tests/cuda_emulated.rs): little-endian on
// stdin, a u32-prefixed kernel name, grid x and y and block size as u32, then each parameter in
// declaration order: a pointer as a u64 count and its elements (count 0: a null pointer), a
// scalar as its bytes. Every pointer's final contents go to stdout, u64 count first.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

inline void read_exact(void* p, size_t n) {
    if (n && std::fread(p, 1, n, stdin) != n) {
        std::fprintf(stderr, "emulator: input ended early\n");
        std::exit(2);
    }
}

template <typename T>
std::vector<T> read_buf() {
    unsigned long long n;
    read_exact(&n, 8);
    std::vector<T> v(n);
    read_exact(v.data(), n * sizeof(T));
    return v;
}

template <typename T>
T read_scalar() {
    T x;
    read_exact(&x, sizeof(T));
    return x;
}

template <typename T>
T* ptr(std::vector<T>& v) {
    return v.empty() ? nullptr : v.data();
}

template <typename T>
void write_buf(const std::vector<T>& v) {
    unsigned long long n = v.size();
    std::fwrite(&n, 8, 1, stdout);
    std::fwrite(v.data(), sizeof(T), v.size(), stdout);
}

inline std::string read_name() {
    unsigned n = read_scalar<unsigned>();
    std::string s(n, '\0');
    read_exact(s.data(), n);
    return s;
}
