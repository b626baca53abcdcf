/* Prints the Argon2id PHC string of the password read from standard input
 * (one line, trailing newline stripped), for tests that plant hashes in
 * the store directly.
 *
 *   hash_tool MEMORY_KIB ITERATIONS < password */
#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

int main(int argc, char **argv) {
    if (argc != 3 || sodium_init() < 0) {
        std::fprintf(stderr, "usage: hash_tool MEMORY_KIB ITERATIONS < password\n");
        return 2;
    }
    std::string password;
    std::getline(std::cin, password);
    char out[crypto_pwhash_argon2id_STRBYTES];
    unsigned long long memory = std::strtoull(argv[1], nullptr, 10) * 1024;
    unsigned long long iterations = std::strtoull(argv[2], nullptr, 10);
    if (crypto_pwhash_argon2id_str(out, password.data(), password.size(), iterations, memory) != 0) {
        std::fprintf(stderr, "hash_tool: hashing failed\n");
        return 1;
    }
    std::printf("%s\n", out);
    return 0;
}
