/* Command-line options of the benchmark driver: "--key value" pairs after
 * the scenario name. */
#pragma once

#include <map>
#include <set>
#include <stdexcept>
#include <string>

namespace warden::bench {

/* A missing, unknown or invalid option; main prints it and exits 2. */
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Options {
public:
    /* Parses argv[first..argc) as "--key value" pairs. Throws UsageError on
     * a bare word, a key without a value or a key given twice. */
    Options(int argc, char **argv, int first);

    bool has(const std::string &key) const;
    /* Returns the value of a required option. Throws UsageError if it is missing. */
    std::string text(const std::string &key) const;
    std::string text(const std::string &key, const std::string &fallback) const;
    long number(const std::string &key) const;
    long number(const std::string &key, long fallback) const;
    double decimal(const std::string &key, double fallback) const;

    /* Throws UsageError naming the first option that no getter read. */
    void reject_unused() const;

private:
    long parse_number(const std::string &key, const std::string &value) const;

    std::map<std::string, std::string> values_;
    mutable std::set<std::string> used_;
};

/* Reads a whole file, without one trailing newline. Throws
 * std::runtime_error naming the file on failure. */
std::string read_text_file(const std::string &path);

} // namespace warden::bench
