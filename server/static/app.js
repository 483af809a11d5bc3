// The page: ask, read the answer as it streams from POST /api/ask (server-sent events), follow [n] to the
// passage. Plain DOM, no build step. Text from the server only ever reaches the page escaped.
"use strict";

(() => {
  const conversation = document.getElementById("conversation");
  const form = document.getElementById("ask");
  const input = document.getElementById("question");
  const send = document.getElementById("send");
  const tokenForm = document.getElementById("token-form");
  const tokenInput = document.getElementById("token");
  const past = []; // [{role, content}] of finished turns: follow-ups are rewritten from it by the server
  let turns = 0;
  let running = null; // AbortController of the answer being streamed
  let pending = null; // question waiting for a token

  // A token in the URL fragment (#token=...) never reaches the server's logs; keep it for this tab only.
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) {
    sessionStorage.setItem("rag-token", fragment.get("token"));
    window.history.replaceState(null, "", location.pathname + location.search);
  }

  function headers() {
    const h = { "Content-Type": "application/json", Accept: "text/event-stream" };
    const token = sessionStorage.getItem("rag-token");
    if (token) h.Authorization = `Bearer ${token}`;
    return h;
  }

  // --- rendering ---
  function escapeHtml(text) {
    return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }

  function inline(text, turn) {
    // text is escaped already; code spans are cut out first so nothing inside them is touched
    return text
      .split(/(`[^`\n]+`)/g)
      .map((part) => {
        if (/^`[^`\n]+`$/.test(part)) return `<code>${part.slice(1, -1)}</code>`;
        return part
          .replace(/\*\*([^*\n]+)\*\*/g, "<strong>$1</strong>")
          .replace(/\[(\d+(?:\s*,\s*\d+)*)\]/g, (_, list) =>
            list
              .split(/\s*,\s*/)
              .map((n) => `<a class="cite" href="#t${turn}-s${n}" data-turn="${turn}" data-n="${n}">[${n}]</a>`)
              .join(""),
          );
      })
      .join("");
  }

  function renderMarkdown(source, turn) {
    // Enough Markdown for DeepSeek's answers: fenced code, lists, headings, paragraphs, `code`, **bold**, [n].
    const out = [];
    const blocks = source.split(/^```[^\n]*\n?/m);
    blocks.forEach((block, i) => {
      if (i % 2 === 1) {
        out.push(`<pre><code>${escapeHtml(block.replace(/\n$/, ""))}</code></pre>`);
        return;
      }
      for (const para of block.split(/\n{2,}/)) {
        const lines = para.split("\n").filter((l) => l.trim() !== "");
        if (!lines.length) continue;
        if (lines.every((l) => /^\s*[-*]\s+/.test(l))) {
          out.push(`<ul>${lines.map((l) => `<li>${inline(escapeHtml(l.replace(/^\s*[-*]\s+/, "")), turn)}</li>`).join("")}</ul>`);
        } else if (lines.every((l) => /^\s*\d+[.)]\s+/.test(l))) {
          out.push(`<ol>${lines.map((l) => `<li>${inline(escapeHtml(l.replace(/^\s*\d+[.)]\s+/, "")), turn)}</li>`).join("")}</ol>`);
        } else {
          const html = lines.map((l) => inline(escapeHtml(l.replace(/^#{1,6}\s+(.*)$/, "**$1**")), turn)).join("<br>");
          out.push(`<p>${html}</p>`);
        }
      }
    });
    return out.join("");
  }

  function element(tag, className, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function newTurn(question) {
    turns += 1;
    document.getElementById("intro")?.remove();
    const section = element("section", "turn");
    section.dataset.turn = String(turns);
    section.append(element("p", "question", question));
    const answer = element("div", "answer streaming");
    answer.append(element("span", "waiting", "Searching the docs…"));
    section.append(answer);
    conversation.append(section);
    section.scrollIntoView({ block: "end", behavior: "smooth" });
    return { id: turns, section, answer, text: "" };
  }

  function showSources(turn, sources) {
    if (!sources.length) return;
    const list = element("ol", "sources");
    const title = element("h2", "", "Sources");
    list.append(title);
    for (const s of sources) {
      const item = element("li");
      item.id = `t${turn.id}-s${s.n}`;
      const details = element("details");
      const summary = element("summary");
      summary.append(element("span", "n", `[${s.n}] `), element("span", "path", s.source));
      summary.append(element("span", "heading", s.heading));
      details.append(summary, element("div", "passage", s.text));
      item.append(details);
      list.append(item);
    }
    turn.section.append(list);
  }

  function showError(turn, message) {
    turn.answer.classList.remove("streaming");
    if (!turn.text) turn.answer.replaceChildren();
    const error = element("p", "error", message);
    error.setAttribute("role", "alert");
    turn.section.append(error);
  }

  // --- citations open their passage ---
  conversation.addEventListener("click", (event) => {
    const link = event.target.closest("a.cite");
    if (!link) return;
    event.preventDefault();
    const item = document.getElementById(`t${link.dataset.turn}-s${link.dataset.n}`);
    if (!item) return;
    item.querySelector("details").open = true;
    item.scrollIntoView({ block: "nearest", behavior: "smooth" });
    item.classList.add("flash");
    setTimeout(() => item.classList.remove("flash"), 1200);
  });

  // --- talking to the server ---
  async function readEvents(response, onEvent) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const raw = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message";
        const data = [];
        for (const line of raw.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) onEvent(event, JSON.parse(data.join("\n")));
      }
    }
  }

  async function ask(question) {
    const turn = newTurn(question);
    const controller = new AbortController();
    running = controller;
    send.disabled = true;
    let frame = 0;
    const paint = () => {
      frame = 0;
      turn.answer.innerHTML = renderMarkdown(turn.text, turn.id);
    };
    try {
      const response = await fetch("/api/ask", {
        method: "POST",
        headers: headers(),
        body: JSON.stringify({ question, chat_history: past, stream: true }),
        signal: controller.signal,
      });
      if (response.status === 401) {
        turn.section.remove();
        pending = question;
        tokenForm.hidden = false;
        tokenInput.focus();
        return;
      }
      if (!response.ok) {
        let message = `the server answered ${response.status}`;
        try {
          message = (await response.json()).error.message || message;
        } catch (_) {
          /* not JSON: keep the status line */
        }
        showError(turn, message);
        return;
      }
      let sources = [];
      let failed = false;
      await readEvents(response, (event, data) => {
        if (event === "token") {
          turn.text += data.text;
          if (!frame) frame = requestAnimationFrame(paint);
        } else if (event === "sources") {
          sources = data.sources || [];
          if (data.notice) turn.section.append(element("p", "notice", data.notice));
        } else if (event === "error") {
          failed = true;
          showError(turn, data.error.message);
        }
      });
      if (frame) cancelAnimationFrame(frame);
      paint();
      turn.answer.classList.remove("streaming");
      if (!turn.text && !failed) {
        turn.answer.replaceChildren(element("span", "waiting", sources.length ? "Passages found:" : "Nothing found."));
      }
      showSources(turn, sources);
      if (turn.text && !failed) past.push({ role: "user", content: question }, { role: "assistant", content: turn.text });
    } catch (error) {
      if (error.name !== "AbortError") showError(turn, `cannot reach the server (${error.message})`);
    } finally {
      turn.answer.classList.remove("streaming");
      if (running === controller) running = null;
      send.disabled = false;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question || running) return;
    input.value = "";
    ask(question);
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  tokenForm.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("rag-token", tokenInput.value.trim());
    tokenInput.value = "";
    tokenForm.hidden = true;
    if (pending) {
      const question = pending;
      pending = null;
      ask(question);
    }
  });

  document.getElementById("new").addEventListener("click", () => {
    running?.abort();
    past.length = 0;
    conversation.querySelectorAll(".turn").forEach((el) => el.remove());
    input.focus();
  });

  input.focus();
})();
