/*
 * Task pages: the creator's wallet sends the server-built TaskRegistry call (createTask or cancel),
 * then the page POSTs the tx hash; the server confirms ONLY from the receipt and its events.
 * Needs wallet.js (window.BCFLWallet). No dependencies.
 */
(function () {
  "use strict";

  function post(url, fields) {
    var body = new URLSearchParams(fields || {});
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": window.BCFLWallet.csrfToken(), "Content-Type": "application/x-www-form-urlencoded" },
      body: body,
    }).then(function (resp) {
      return resp.json().catch(function () {
        return { ok: false, message: "The server answered " + resp.status + "." };
      });
    });
  }

  function mark(step, state) {
    var li = document.querySelector('#tx-steps [data-step="' + step + '"]');
    if (li) li.className = state;
  }

  async function confirm(flow, hash) {
    var W = window.BCFLWallet;
    mark("server", "");
    W.setStatus("#wallet-status", "Checking the transaction on the platform…", "info");
    for (var attempt = 0; attempt < 10; attempt++) {
      var result = await post(flow.dataset.confirmUrl, { tx_hash: hash });
      if (result.ok) {
        mark("server", "ok");
        W.setStatus("#wallet-status", "Confirmed. Redirecting…", "ok");
        if (result.redirect) window.location.assign(result.redirect);
        return result;
      }
      if (!/not mined yet/.test(result.message || "")) {
        mark("server", "bad");
        W.setStatus("#wallet-status", result.message, "error");
        return result;
      }
      await new Promise(function (r) { setTimeout(r, 2000); });
    }
    W.setStatus("#wallet-status", "Still not mined; this page can be closed, the platform will pick it up.", "error");
  }

  async function run(flow, button) {
    var W = window.BCFLWallet;
    var call = JSON.parse(document.getElementById("tx-call").textContent);
    button.disabled = true;
    try {
      if (flow.dataset.startUrl && flow.dataset.status === "draft") {
        var started = await post(flow.dataset.startUrl);
        if (!started.ok) throw new Error(started.message);
        flow.dataset.status = started.status;
      }
      var account = await W.connect();
      if (account.toLowerCase() !== flow.dataset.wallet.toLowerCase()) {
        throw new Error("Your wallet's active account is " + account + "; switch to " + flow.dataset.wallet + ", the account you signed in with.");
      }
      await W.ensureChain(call.chainId);
      mark("wallet", "");
      var hash;
      try {
        hash = await W.sendTransaction({ to: call.to, data: call.data, value: call.value, from: account, status: "#wallet-status" });
      } catch (err) {
        if (flow.dataset.abandonUrl) await post(flow.dataset.abandonUrl, { reason: "Wallet did not send: " + err.message });
        flow.dataset.status = "draft";
        throw err;
      }
      mark("wallet", "ok");
      try {
        await W.waitForReceipt(hash, { status: "#wallet-status" });
        mark("mined", "ok");
      } catch (err) {
        mark("mined", "bad");  // the server still decides, from the receipt
      }
      await confirm(flow, hash);
    } catch (err) {
      W.setStatus("#wallet-status", err.message, "error");
    } finally {
      button.disabled = false;
    }
  }

  function wire() {
    var flow = document.getElementById("tx-flow");
    if (!flow) return;
    var button = document.getElementById("tx-send");
    if (!window.BCFLWallet || !window.BCFLWallet.available()) {
      button.disabled = true;
      document.getElementById("wallet-status").textContent = "No browser wallet found; install one (e.g. MetaMask) to send the transaction.";
    }
    button.addEventListener("click", function () { run(flow, button); });
    document.getElementById("tx-manual").addEventListener("submit", function (ev) {
      ev.preventDefault();
      confirm(flow, ev.target.elements.tx_hash.value.trim());
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wire);
  else wire();
})();
