// Live views: the server sends the view's content again when it changes (server-sent events).
document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("live");
  if (!live || !live.dataset.stream) return;
  const source = new EventSource(live.dataset.stream);
  source.onmessage = (event) => {
    live.innerHTML = JSON.parse(event.data).html;
    live.dataset.updated = String(Date.now());
  };
  source.addEventListener("denied", () => { source.close(); window.location.reload(); });
});
