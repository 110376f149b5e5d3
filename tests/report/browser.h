// A headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
// JSON messages, each ended by a NUL byte, on file descriptors 3 and 4), so that tests open
// netlens' HTML the way a person does: real layout, real script, real clicks and key presses.
// No WebSocket, no npm package: the browser and this file are all it takes.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace netlens::test {

using BrowserJson = nlohmann::json;

// Chromium's executable: $NETLENS_CHROMIUM, else chromium, chromium-browser or google-chrome on PATH.
inline std::string FindChromium() {
  if (const char* env = std::getenv("NETLENS_CHROMIUM")) return env;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin";
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    size_t start = 0;
    while (start <= dirs.size()) {
      const size_t end = dirs.find(':', start);
      const std::string dir = dirs.substr(start, end == std::string::npos ? std::string::npos : end - start);
      const std::string candidate = dir + "/" + name;
      if (!dir.empty() && access(candidate.c_str(), X_OK) == 0) return candidate;
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  return "";
}

inline std::string DecodeBase64(const std::string& text) {
  std::string out;
  int bits = 0;
  uint32_t acc = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else continue;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

class Browser {
 public:
  Browser(const std::string& executable, const std::string& profile_dir) {
    int to_browser[2], from_browser[2];
    if (pipe(to_browser) != 0 || pipe(from_browser) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(to_browser[0], 3);
      dup2(from_browser[1], 4);
      for (int fd : {to_browser[0], to_browser[1], from_browser[0], from_browser[1]})
        if (fd > 4) close(fd);
      const int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      const std::string profile = "--user-data-dir=" + profile_dir;
      std::vector<const char*> args{executable.c_str(), "--headless", "--no-sandbox", "--disable-gpu",
                                    "--remote-debugging-pipe", profile.c_str(), "--no-first-run",
                                    "--no-default-browser-check", "--disable-extensions",
                                    "--disable-background-networking", "--disable-component-update",
                                    "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
                                    "--window-size=1400,1000", "about:blank", nullptr};
      execv(executable.c_str(), const_cast<char* const*>(args.data()));
      _exit(127);
    }
    close(to_browser[0]);
    close(from_browser[1]);
    out_ = to_browser[1];
    in_ = from_browser[0];
    signal(SIGPIPE, SIG_IGN);
  }

  ~Browser() {
    try {
      Call("Browser.close", BrowserJson::object(), "", 5);
    } catch (...) {
    }
    close(out_);
    close(in_);
    for (int i = 0; i < 50; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      usleep(100000);
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }

  // Sends a command (to a page's session when `session` is given) and returns its result;
  // events that arrive meanwhile are kept in `events`. Throws on an error reply or a timeout.
  BrowserJson Call(const std::string& method, const BrowserJson& params = BrowserJson::object(),
                   const std::string& session = "", double timeout_s = 30) {
    const int id = next_id_++;
    BrowserJson message{{"id", id}, {"method", method}, {"params", params}};
    if (!session.empty()) message["sessionId"] = session;
    const std::string text = message.dump() + std::string(1, '\0');
    size_t sent = 0;
    while (sent < text.size()) {
      const ssize_t n = write(out_, text.data() + sent, text.size() - sent);
      if (n <= 0) throw std::runtime_error("the browser closed its pipe (" + method + ")");
      sent += static_cast<size_t>(n);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
    while (true) {
      BrowserJson reply = Read(deadline, method);
      if (reply.contains("id") && reply["id"] == id) {
        if (reply.contains("error")) throw std::runtime_error(method + ": " + reply["error"].dump());
        return reply.value("result", BrowserJson::object());
      }
      if (reply.contains("method")) events.push_back(reply);
    }
  }

  // Waits until an event `method` arrives (or has arrived since the last call) and returns it.
  BrowserJson WaitFor(const std::string& method, double timeout_s = 30) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
    while (true) {
      for (size_t i = seen_; i < events.size(); ++i)
        if (events[i]["method"] == method) {
          seen_ = i + 1;
          return events[i];
        }
      BrowserJson e = Read(deadline, method);
      if (e.contains("method")) events.push_back(e);
    }
  }

  std::vector<BrowserJson> events;

 private:
  BrowserJson Read(std::chrono::steady_clock::time_point deadline, const std::string& what) {
    while (true) {
      const size_t end = buffer_.find('\0');
      if (end != std::string::npos) {
        const std::string text = buffer_.substr(0, end);
        buffer_.erase(0, end + 1);
        return BrowserJson::parse(text);
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) throw std::runtime_error("timed out waiting for the browser (" + what + ")");
      pollfd p{in_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[65536];
      const ssize_t n = read(in_, buf, sizeof(buf));
      if (n <= 0) throw std::runtime_error("the browser exited (" + what + ")");
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }

  pid_t pid_ = -1;
  int out_ = -1, in_ = -1;
  int next_id_ = 1;
  size_t seen_ = 0;
  std::string buffer_;
};

// One page of a Browser: open a file, evaluate script, click and press keys like a user.
class Page {
 public:
  explicit Page(Browser& browser) : browser_(browser) {
    const auto target = browser_.Call("Target.createTarget", {{"url", "about:blank"}});
    session_ = browser_.Call("Target.attachToTarget", {{"targetId", target["targetId"]}, {"flatten", true}})["sessionId"];
    for (const char* domain : {"Page.enable", "Runtime.enable", "Log.enable", "Network.enable"})
      browser_.Call(domain, BrowserJson::object(), session_);
  }

  void Open(const std::string& path) {
    browser_.Call("Page.navigate", {{"url", "file://" + std::filesystem::absolute(path).string()}}, session_);
    browser_.WaitFor("Page.loadEventFired", 60);
  }

  // The value of a JavaScript expression (JSON-serializable), or throws with the exception text.
  BrowserJson Eval(const std::string& expression) {
    const auto r = browser_.Call("Runtime.evaluate",
                                 {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}}, session_);
    if (r.contains("exceptionDetails")) throw std::runtime_error("script error: " + r["exceptionDetails"].dump());
    return r["result"].value("value", BrowserJson());
  }

  // A real mouse click at the centre of the first element matching `selector`.
  void Click(const std::string& selector) {
    const auto box = Eval("(function(){var e=document.querySelector(" + BrowserJson(selector).dump() +
                          ");if(!e)return null;e.scrollIntoView({block:'center'});var r=e.getBoundingClientRect();"
                          "return {x:r.left+r.width/2,y:r.top+r.height/2};})()");
    if (box.is_null()) throw std::runtime_error("nothing matches " + selector);
    for (const char* type : {"mousePressed", "mouseReleased"})
      browser_.Call("Input.dispatchMouseEvent", {{"type", type}, {"x", box["x"]}, {"y", box["y"]},
                                                 {"button", "left"}, {"clickCount", 1}}, session_);
  }

  void PressKey(const std::string& key, int code) {
    for (const char* type : {"keyDown", "keyUp"})
      browser_.Call("Input.dispatchKeyEvent", {{"type", type}, {"key", key}, {"code", key},
                                               {"windowsVirtualKeyCode", code}}, session_);
  }

  // PNG bytes of the visible page.
  std::string Screenshot() {
    return DecodeBase64(browser_.Call("Page.captureScreenshot", {{"format", "png"}}, session_)["data"]);
  }

  // Console errors, uncaught exceptions and error log entries so far.
  std::vector<std::string> Errors() const {
    std::vector<std::string> out;
    for (const auto& e : browser_.events) {
      const std::string m = e.value("method", "");
      if (m == "Runtime.exceptionThrown" ||
          (m == "Runtime.consoleAPICalled" && e["params"].value("type", "") == "error") ||
          (m == "Log.entryAdded" && e["params"]["entry"].value("level", "") == "error"))
        out.push_back(e.dump().substr(0, 400));
    }
    return out;
  }

  // URLs the page requested that are neither the file itself (file:) nor embedded (data:).
  std::vector<std::string> NetworkRequests() const {
    std::vector<std::string> out;
    for (const auto& e : browser_.events)
      if (e.value("method", "") == "Network.requestWillBeSent") {
        const std::string url = e["params"]["request"].value("url", "");
        if (url.rfind("file:", 0) != 0 && url.rfind("data:", 0) != 0) out.push_back(url);
      }
    return out;
  }

 private:
  Browser& browser_;
  std::string session_;
};

}  // namespace netlens::test
