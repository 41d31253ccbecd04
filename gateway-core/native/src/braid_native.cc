// braid_native: the few Linux system calls Braid needs that Node does not expose.
//
//   openTun(name)                  -> { fd, name }      /dev/net/tun, IFF_TUN | IFF_NO_PI
//   closeFd(fd)
//   tunWrite(fd, buf)              -> boolean           false when the kernel queue is full (EAGAIN)
//   tunWriteBatch(fd, bufs)        -> number            packets written before the first EAGAIN
//   pollStart(fd, cb, batchLimit)  -> id                cb(err, packets[]) once per readable batch
//   pollStop(id)                   -> boolean           false when id is unknown (already stopped)
//   setBindToDevice(fd, ifname)    SO_BINDTODEVICE
//   setMark(fd, mark)              SO_MARK
//   setMtuDiscover(fd, mode)       IP_MTU_DISCOVER (and IPV6_MTU_DISCOVER on IPv6 sockets)
//
// Everything else (validation of intent, packet parsing, policy) lives in TypeScript. C++
// exceptions are disabled: every error is raised with ThrowAsJavaScriptException and an early
// return. Errors carry Node's usual system-error fields: code ('ENODEV'), errno (negative, as
// in Node), syscall.

#include <napi.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/netfilter_ipv4.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

// Largest IP packet a TUN fd can hand us (IPv4 total length / IPv6 payload length are 16 bits).
constexpr size_t kMaxPacket = 65536;
constexpr uint32_t kDefaultBatch = 64;
constexpr uint32_t kMaxBatch = 4096;

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& what) {
  const char* name = uv_err_name(-err);
  std::string msg = what + " failed: " + name + " (" + std::strerror(err) + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, name));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

void ThrowErrno(Napi::Env env, int err, const char* syscall, const std::string& what) {
  ErrnoError(env, err, syscall, what).ThrowAsJavaScriptException();
}

void ThrowType(Napi::Env env, const std::string& msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
}

// Reads argument i as a file descriptor; throws and returns false when it is not one.
bool ArgFd(const Napi::CallbackInfo& info, size_t i, int* fd) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    ThrowType(info.Env(), "fd must be a number");
    return false;
  }
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 2147483647.0) || d != static_cast<double>(static_cast<int>(d))) {
    ThrowType(info.Env(), "fd must be a non-negative integer, got " + std::to_string(d));
    return false;
  }
  *fd = static_cast<int>(d);
  return true;
}

// Reads argument i as an interface name (< IFNAMSIZ bytes); throws and returns false otherwise.
bool ArgIfname(const Napi::CallbackInfo& info, size_t i, std::string* out) {
  if (info.Length() <= i || !info[i].IsString()) {
    ThrowType(info.Env(), "interface name must be a string");
    return false;
  }
  std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s.size() >= IFNAMSIZ || s.find('\0') != std::string::npos) {
    Napi::Error e = Napi::Error::New(info.Env(), "interface name \"" + s + "\" is too long (at most " +
                                                     std::to_string(IFNAMSIZ - 1) + " bytes)");
    e.Set("code", Napi::String::New(info.Env(), "ERR_IFNAME_TOO_LONG"));
    e.ThrowAsJavaScriptException();
    return false;
  }
  *out = s;
  return true;
}

std::string FdText(int fd) { return "fd " + std::to_string(fd); }

class BraidNative;

// One uv_poll watching one TUN fd. Owned by itself: freed in the uv_close callback, because
// libuv may still reference the handle until then (and JS may stop a poll from inside its own
// callback).
struct TunPoll {
  uv_poll_t handle;
  napi_env env = nullptr;
  BraidNative* addon = nullptr;
  uint32_t id = 0;
  int fd = -1;
  uint32_t batch = kDefaultBatch;
  bool stopping = false;
  Napi::FunctionReference cb;
  std::unique_ptr<Napi::AsyncContext> ctx;
  napi_async_cleanup_hook_handle hook = nullptr;
};

class BraidNative : public Napi::Addon<BraidNative> {
 public:
  BraidNative(Napi::Env env, Napi::Object exports) : scratch_(kMaxPacket) {
    DefineAddon(exports, {
                             InstanceMethod("openTun", &BraidNative::OpenTun, napi_enumerable),
                             InstanceMethod("closeFd", &BraidNative::CloseFd, napi_enumerable),
                             InstanceMethod("tunWrite", &BraidNative::TunWrite, napi_enumerable),
                             InstanceMethod("tunWriteBatch", &BraidNative::TunWriteBatch, napi_enumerable),
                             InstanceMethod("pollStart", &BraidNative::PollStart, napi_enumerable),
                             InstanceMethod("pollStop", &BraidNative::PollStop, napi_enumerable),
                             InstanceMethod("setBindToDevice", &BraidNative::SetBindToDevice, napi_enumerable),
                             InstanceMethod("setMark", &BraidNative::SetMark, napi_enumerable),
                             InstanceMethod("setMtuDiscover", &BraidNative::SetMtuDiscover, napi_enumerable),
                             InstanceMethod("originalDst", &BraidNative::OriginalDst, napi_enumerable),
                         });
    (void)env;
  }

  // Begins closing a poll; safe to call from inside its callback. The struct is freed later.
  void StopPoll(TunPoll* p) {
    if (p->stopping) return;
    p->stopping = true;
    polls_.erase(p->id);
    uv_poll_stop(&p->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), OnClosed);
  }

 private:
  std::vector<uint8_t> scratch_;  // one read buffer per env; packets are copied out of it
  std::unordered_map<uint32_t, TunPoll*> polls_;
  uint32_t next_id_ = 1;

  Napi::Value OpenTun(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name;
    if (!ArgIfname(info, 0, &name)) return env.Undefined();
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      ThrowErrno(env, errno, "open", "open(/dev/net/tun)");
      return env.Undefined();
    }
    struct ifreq ifr;
    std::memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    std::memcpy(ifr.ifr_name, name.data(), name.size());  // empty: the kernel picks tunN
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
      int err = errno;
      close(fd);
      ThrowErrno(env, err, "ioctl", "ioctl(TUNSETIFF, \"" + name + "\")");
      return env.Undefined();
    }
    ifr.ifr_name[IFNAMSIZ - 1] = '\0';
    Napi::Object out = Napi::Object::New(env);
    out.Set("fd", Napi::Number::New(env, fd));
    out.Set("name", Napi::String::New(env, ifr.ifr_name));
    return out;
  }

  Napi::Value CloseFd(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd;
    if (!ArgFd(info, 0, &fd)) return env.Undefined();
    // Linux releases the fd even when close() reports EINTR, so it must not be retried.
    if (close(fd) < 0 && errno != EINTR) ThrowErrno(env, errno, "close", "close(" + FdText(fd) + ")");
    return env.Undefined();
  }

  // Writes one packet: 1 written, 0 queue full (EAGAIN), -1 error (errno set).
  static int WriteOne(int fd, const uint8_t* data, size_t len) {
    for (;;) {
      ssize_t r = write(fd, data, len);
      if (r >= 0) return 1;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return -1;
    }
  }

  Napi::Value TunWrite(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd;
    if (!ArgFd(info, 0, &fd)) return env.Undefined();
    if (info.Length() < 2 || !info[1].IsBuffer()) {
      ThrowType(env, "packet must be a Buffer");
      return env.Undefined();
    }
    auto buf = info[1].As<Napi::Buffer<uint8_t>>();
    int r = WriteOne(fd, buf.Data(), buf.Length());
    if (r < 0) {
      ThrowErrno(env, errno, "write", "write(TUN " + FdText(fd) + ", " + std::to_string(buf.Length()) + " bytes)");
      return env.Undefined();
    }
    return Napi::Boolean::New(env, r == 1);
  }

  Napi::Value TunWriteBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd;
    if (!ArgFd(info, 0, &fd)) return env.Undefined();
    if (info.Length() < 2 || !info[1].IsArray()) {
      ThrowType(env, "packets must be an array of Buffers");
      return env.Undefined();
    }
    Napi::Array arr = info[1].As<Napi::Array>();
    uint32_t n = arr.Length();
    uint32_t written = 0;
    for (uint32_t i = 0; i < n; i++) {
      Napi::Value v = arr.Get(i);
      if (!v.IsBuffer()) {
        ThrowType(env, "packets[" + std::to_string(i) + "] is not a Buffer");
        return env.Undefined();
      }
      auto buf = v.As<Napi::Buffer<uint8_t>>();
      int r = WriteOne(fd, buf.Data(), buf.Length());
      if (r == 0) break;
      if (r < 0) {
        Napi::Error e = ErrnoError(env, errno, "write", "write(TUN " + FdText(fd) + ", packet " + std::to_string(i) + ")");
        e.Set("written", Napi::Number::New(env, written));  // so the caller can count what went out
        e.ThrowAsJavaScriptException();
        return env.Undefined();
      }
      written++;
    }
    return Napi::Number::New(env, written);
  }

  Napi::Value PollStart(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd;
    if (!ArgFd(info, 0, &fd)) return env.Undefined();
    if (info.Length() < 2 || !info[1].IsFunction()) {
      ThrowType(env, "callback must be a function");
      return env.Undefined();
    }
    uint32_t batch = kDefaultBatch;
    if (info.Length() > 2 && !info[2].IsUndefined()) {
      if (!info[2].IsNumber()) {
        ThrowType(env, "batchLimit must be a number");
        return env.Undefined();
      }
      double b = info[2].As<Napi::Number>().DoubleValue();
      if (!(b >= 1 && b <= kMaxBatch)) {
        ThrowType(env, "batchLimit must be between 1 and " + std::to_string(kMaxBatch));
        return env.Undefined();
      }
      batch = static_cast<uint32_t>(b);
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      Napi::Error::New(env, "pollStart: no libuv loop").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto p = std::make_unique<TunPoll>();
    int rc = uv_poll_init(loop, &p->handle, fd);
    if (rc < 0) {
      ThrowErrno(env, -rc, "uv_poll_init", "uv_poll_init(" + FdText(fd) + ")");
      return env.Undefined();
    }
    TunPoll* raw = p.release();  // from here on freed by OnClosed
    raw->handle.data = raw;
    raw->env = env;
    raw->addon = this;
    raw->id = next_id_++;
    raw->fd = fd;
    raw->batch = batch;
    raw->cb = Napi::Persistent(info[1].As<Napi::Function>());
    raw->ctx = std::make_unique<Napi::AsyncContext>(env, "BraidTunPoll");
    polls_[raw->id] = raw;
    // Lets a worker thread's environment shut down cleanly with a poll still running.
    napi_add_async_cleanup_hook(env, OnEnvCleanup, raw, &raw->hook);
    rc = uv_poll_start(&raw->handle, UV_READABLE, OnReadable);
    if (rc < 0) {
      StopPoll(raw);
      ThrowErrno(env, -rc, "uv_poll_start", "uv_poll_start(" + FdText(fd) + ")");
      return env.Undefined();
    }
    return Napi::Number::New(env, raw->id);
  }

  Napi::Value PollStop(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) {
      ThrowType(env, "poll id must be a number");
      return env.Undefined();
    }
    auto it = polls_.find(info[0].As<Napi::Number>().Uint32Value());
    if (it == polls_.end()) return Napi::Boolean::New(env, false);
    StopPoll(it->second);
    return Napi::Boolean::New(env, true);
  }

  static void OnEnvCleanup(napi_async_cleanup_hook_handle, void* arg) {
    TunPoll* p = static_cast<TunPoll*>(arg);
    p->addon->StopPoll(p);  // OnClosed removes the hook, which lets the environment finish
  }

  static void OnClosed(uv_handle_t* h) {
    TunPoll* p = static_cast<TunPoll*>(h->data);
    {
      Napi::HandleScope scope(Napi::Env(p->env));
      p->cb.Reset();
      p->ctx.reset();
    }
    if (p->hook != nullptr) napi_remove_async_cleanup_hook(p->hook);
    delete p;
  }

  // Calls the JS callback; an exception thrown there becomes an uncaught exception, as it would
  // for any other I/O callback.
  static void Deliver(TunPoll* p, napi_value err, napi_value packets) {
    Napi::Env env(p->env);
    p->cb.MakeCallback(env.Global(), {err, packets}, *p->ctx);
    if (env.IsExceptionPending()) {
      Napi::Error e = env.GetAndClearPendingException();
      napi_fatal_exception(p->env, e.Value());
    }
  }

  static void OnReadable(uv_poll_t* h, int status, int events) {
    TunPoll* p = static_cast<TunPoll*>(h->data);
    if (p->stopping) return;
    Napi::Env env(p->env);
    Napi::HandleScope scope(env);
    if (status < 0) {
      Napi::Error e = ErrnoError(env, -status, "uv_poll", "poll(TUN " + FdText(p->fd) + ")");
      p->addon->StopPoll(p);
      Deliver(p, e.Value(), env.Undefined());
      return;
    }
    if (!(events & UV_READABLE)) return;
    // Level-triggered: stopping at the batch limit with packets still queued just means we are
    // called again on the next loop iteration, after other I/O had its turn.
    std::vector<uint8_t>& buf = p->addon->scratch_;
    Napi::Array packets = Napi::Array::New(env);
    uint32_t n = 0;
    int err = 0;
    while (n < p->batch) {
      ssize_t r = read(p->fd, buf.data(), buf.size());
      if (r > 0) {
        packets.Set(n++, Napi::Buffer<uint8_t>::Copy(env, buf.data(), static_cast<size_t>(r)));
        continue;
      }
      if (r == 0) break;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
      break;
    }
    if (n > 0) Deliver(p, env.Null(), packets);
    if (err != 0 && !p->stopping) {
      Napi::Error e = ErrnoError(env, err, "read", "read(TUN " + FdText(p->fd) + ")");
      p->addon->StopPoll(p);
      Deliver(p, e.Value(), env.Undefined());
    }
  }

  Napi::Value SetBindToDevice(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd;
    std::string name;
    if (!ArgFd(info, 0, &fd) || !ArgIfname(info, 1, &name)) return env.Undefined();
    // An empty name removes the binding.
    if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name.c_str(), static_cast<socklen_t>(name.size())) < 0) {
      ThrowErrno(env, errno, "setsockopt", "setsockopt(SO_BINDTODEVICE \"" + name + "\", " + FdText(fd) + ")");
    }
    return env.Undefined();
  }

  Napi::Value SetMark(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd;
    if (!ArgFd(info, 0, &fd)) return env.Undefined();
    if (info.Length() < 2 || !info[1].IsNumber()) {
      ThrowType(env, "mark must be a number");
      return env.Undefined();
    }
    double d = info[1].As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint32_t>(d))) {
      ThrowType(env, "mark must be an unsigned 32-bit integer, got " + std::to_string(d));
      return env.Undefined();
    }
    uint32_t mark = static_cast<uint32_t>(d);
    if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) < 0) {
      ThrowErrno(env, errno, "setsockopt", "setsockopt(SO_MARK " + std::to_string(mark) + ", " + FdText(fd) + ")");
    }
    return env.Undefined();
  }

  Napi::Value SetMtuDiscover(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd;
    if (!ArgFd(info, 0, &fd)) return env.Undefined();
    std::string mode = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    int v4, v6;
    if (mode == "dont") {
      v4 = IP_PMTUDISC_DONT; v6 = IPV6_PMTUDISC_DONT;
    } else if (mode == "want") {
      v4 = IP_PMTUDISC_WANT; v6 = IPV6_PMTUDISC_WANT;
    } else if (mode == "do") {
      v4 = IP_PMTUDISC_DO; v6 = IPV6_PMTUDISC_DO;
    } else if (mode == "probe") {
      v4 = IP_PMTUDISC_PROBE; v6 = IPV6_PMTUDISC_PROBE;
    } else {
      ThrowType(env, "MTU discovery mode must be 'dont', 'do', 'probe' or 'want'");
      return env.Undefined();
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    std::memset(&ss, 0, sizeof ss);
    if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&ss), &sl) < 0) {
      ThrowErrno(env, errno, "getsockname", "setsockopt(IP_MTU_DISCOVER '" + mode + "', " + FdText(fd) + ")");
      return env.Undefined();
    }
    if (ss.ss_family == AF_INET6) {
      if (setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &v6, sizeof v6) < 0) {
        ThrowErrno(env, errno, "setsockopt", "setsockopt(IPV6_MTU_DISCOVER '" + mode + "', " + FdText(fd) + ")");
        return env.Undefined();
      }
      // A dual-stack socket sends IPv4-mapped traffic under the IPv4 option; an IPv6-only one
      // may refuse it, which is harmless.
      setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v4, sizeof v4);
      return env.Undefined();
    }
    if (setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v4, sizeof v4) < 0) {
      ThrowErrno(env, errno, "setsockopt", "setsockopt(IP_MTU_DISCOVER '" + mode + "', " + FdText(fd) + ")");
    }
    return env.Undefined();
  }

  // SO_ORIGINAL_DST: where a connection redirected by netfilter NAT (nftables `redirect`) was
  // going before it was redirected to us. The TCP relay's listener reads it per accepted socket.
  Napi::Value OriginalDst(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd;
    if (!ArgFd(info, 0, &fd)) return env.Undefined();
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    std::memset(&sa, 0, sizeof sa);
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &sa, &sl) < 0) {
      ThrowErrno(env, errno, "getsockopt", "getsockopt(SO_ORIGINAL_DST, " + FdText(fd) + ")");
      return env.Undefined();
    }
    char text[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &sa.sin_addr, text, sizeof text) == nullptr) {
      ThrowErrno(env, errno, "inet_ntop", "SO_ORIGINAL_DST of " + FdText(fd));
      return env.Undefined();
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("address", Napi::String::New(env, text));
    out.Set("port", Napi::Number::New(env, ntohs(sa.sin_port)));
    return out;
  }
};

}  // namespace

NODE_API_ADDON(BraidNative)
