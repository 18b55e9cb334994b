#include "io/read_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.hpp"

namespace ovis {

std::string read_file_limited(const std::string& path, size_t max_bytes, const char* what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail(path, ": cannot open ", what, ": ", std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    fail(path, ": cannot read ", what, ": not a regular file");
  if (uint64_t(st.st_size) > max_bytes)
    fail(path, ": ", what, " of ", uint64_t(st.st_size), " bytes exceeds the ", max_bytes,
         "-byte limit");
  std::string data(size_t(st.st_size), '\0');
  size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::read(fd, data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(path, ": error reading ", what, ": ", std::strerror(errno));
    if (n == 0) break;  // the file shrank while being read
    got += size_t(n);
  }
  data.resize(got);
  return data;
}

}  // namespace ovis
