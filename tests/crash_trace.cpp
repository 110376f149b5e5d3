// A test program that crashes says where: on SIGSEGV, SIGBUS, SIGFPE or SIGILL the stack goes to
// stderr (function names for exported symbols, module+offset otherwise, for addr2line), then the
// signal is raised again for its usual exit status. Where the unwinder cannot walk the faulting
// code (a jump to a bad address), the faulting address and the code addresses found in the top of
// the stack are printed instead: return addresses among them name the callers. Left alone where a
// handler is already set (AddressSanitizer's).
#include <dlfcn.h>
#include <execinfo.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace {

void PrintCodeAddress(const char* label, void* address) {
  Dl_info info;
  if (!dladdr(address, &info) || !info.dli_fname) return;
  ssize_t ignored = write(STDERR_FILENO, label, std::strlen(label));
  (void)ignored;
  backtrace_symbols_fd(&address, 1, STDERR_FILENO);
}

void OnFatalSignal(int sig, siginfo_t* info, void* context) {
  const char* name = sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS" : sig == SIGFPE ? "SIGFPE" : "SIGILL";
  const char head[] = "\n*** fatal signal ";
  ssize_t ignored = write(STDERR_FILENO, head, sizeof(head) - 1);
  ignored = write(STDERR_FILENO, name, std::strlen(name));
  ignored = write(STDERR_FILENO, ", stack:\n", 9);
  (void)ignored;
  void* frames[64];
  backtrace_symbols_fd(frames, backtrace(frames, 64), STDERR_FILENO);
  char line[160];
#if defined(__x86_64__)
  const auto* regs = static_cast<ucontext_t*>(context)->uc_mcontext.gregs;
  const auto pc = static_cast<uintptr_t>(regs[REG_RIP]), sp = static_cast<uintptr_t>(regs[REG_RSP]);
  int n = std::snprintf(line, sizeof line, "fault address %p, pc %p, thread %ld of process %d; code in the stack:\n",
                        info->si_addr, reinterpret_cast<void*>(pc), static_cast<long>(syscall(SYS_gettid)), getpid());
  ignored = write(STDERR_FILENO, line, n);
  PrintCodeAddress("  pc ", reinterpret_cast<void*>(pc));
  for (int i = 0; i < 48; ++i) {
    void* word = reinterpret_cast<void**>(sp)[i];
    std::snprintf(line, sizeof line, "  sp+%d ", 8 * i);
    PrintCodeAddress(line, word);
  }
#else
  (void)info, (void)context, (void)line;
#endif
  signal(sig, SIG_DFL);
  raise(sig);
}

struct InstallCrashTrace {
  InstallCrashTrace() {
    void* warm[1];
    backtrace(warm, 1);  // loads the unwinder now, not inside the handler
    static char alternate_stack[64 * 1024];
    stack_t ss{};
    ss.ss_sp = alternate_stack;
    ss.ss_size = sizeof(alternate_stack);
    sigaltstack(&ss, nullptr);
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL}) {
      struct sigaction old {};
      if (sigaction(sig, nullptr, &old) != 0 || old.sa_handler != SIG_DFL) continue;
      struct sigaction sa {};
      sa.sa_sigaction = OnFatalSignal;
      sa.sa_flags = SA_ONSTACK | SA_SIGINFO;
      sigemptyset(&sa.sa_mask);
      sigaction(sig, &sa, nullptr);
    }
  }
} install_crash_trace;

}  // namespace
