/*
 * Marketplace model page: buy a licence or the NFT, and the owner's licence terms, listing and unlisting.
 * The server builds each transaction (POST data-url -> {calls: [{to, data, value, chainId}], confirm_url});
 * the wallet sends it (a listing is two: approve, then list), the page waits for the receipt, then POSTs the
 * tx hash to confirm_url and shows the server's answer (refusals in words: wrong amount, listing gone, terms
 * changed, own model, wrong chain, not enough funds, reverted). Wrong account / wrong chain are refused here
 * before anything is sent. Needs wallet.js (window.BCFLWallet). No dependencies. CSRF header on every POST.
 */
(function () {
  "use strict";

  var STATUS = "#wallet-status";

  async function post(url, body) {
    var response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": window.BCFLWallet.csrfToken() },
      body: JSON.stringify(body || {}),
    });
    var data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      var msg = (data && (data.error || data.detail)) || "Server error " + response.status + ".";
      if (response.status === 403 && !(data && data.error)) msg = "The request was refused (CSRF or permissions). Reload the page and try again.";
      var err = new Error(msg);
      err.code = data && data.code;
      throw err;
    }
    return data;
  }

  async function onChain(W, wanted) {
    try {
      await W.ensureChain(wanted);
    } catch (err) {
      if (err.code === 4001) throw err;
    }
    var current = parseInt(await window.ethereum.request({ method: "eth_chainId" }), 16);
    if (current !== wanted) {
      throw new Error("Your wallet is on chain " + current + "; the marketplace is on chain " + wanted + ". Switch networks in your wallet and try again.");
    }
    return current;
  }

  function formBody(form) {
    var body = {};
    new FormData(form).forEach(function (value, key) { body[key] = value; });
    form.querySelectorAll("input[type=checkbox]").forEach(function (box) { body[box.name] = box.checked; });
    return body;
  }

  async function confirmWithRetry(url, hash) {
    // the server may not see the receipt yet (`not_mined`): ask again a few times
    for (var i = 0; ; i++) {
      try {
        return await post(url, { tx_hash: hash });
      } catch (err) {
        if (err.code !== "not_mined" || i >= 5) throw err;
        await new Promise(function (r) { setTimeout(r, 1500); });
      }
    }
  }

  async function receiptOrReason(W, hash, confirmUrl) {
    // A reverted transaction (another buyer was first, the price changed, ...): the server decodes why from
    // the receipt, so show its words rather than a bare "reverted".
    try {
      return await W.waitForReceipt(hash, { status: STATUS });
    } catch (err) {
      if (!err.receipt) throw err;
      W.setStatus(STATUS, "The transaction failed on chain. Asking the server why…", "error");
      var reason;
      try {
        await post(confirmUrl, { tx_hash: hash });
      } catch (refusal) {
        reason = refusal;
      }
      throw reason || err;
    }
  }

  async function run(flow, url, body) {
    var W = window.BCFLWallet;
    var controls = document.querySelectorAll("[data-market-action], [data-market-form] button");
    controls.forEach(function (b) { b.disabled = true; });
    try {
      var account = await W.connect();
      if (account.toLowerCase() !== flow.dataset.wallet.toLowerCase()) {
        throw new Error("Your wallet's active account is " + account + "; switch to " + flow.dataset.wallet + ", the account you signed in with.");
      }
      var chainId = await onChain(W, parseInt(flow.dataset.chainId, 10));
      var balance = await window.ethereum.request({ method: "eth_getBalance", params: [account, "latest"] });
      W.setStatus(STATUS, "Preparing the transaction…", "info");
      var answer = await post(url, Object.assign({ wallet_chain_id: chainId, wallet_balance_wei: balance }, body || {}));
      var hash = null;
      for (var i = 0; i < answer.calls.length; i++) {
        var call = answer.calls[i];
        if (answer.calls.length > 1) W.setStatus(STATUS, "Transaction " + (i + 1) + " of " + answer.calls.length + "…", "info");
        hash = await W.sendTransaction({ to: call.to, data: call.data, value: call.value, from: account, status: STATUS });
        await receiptOrReason(W, hash, answer.confirm_url);
      }
      W.setStatus(STATUS, "Mined. Checking it on the server…", "info");
      var result = await confirmWithRetry(answer.confirm_url, hash);
      var words = result.message || (result.kind === "nft" ? "You bought the NFT." : "Your licence is confirmed.");
      W.setStatus(STATUS, words + " Reloading…", "ok");
      setTimeout(function () { window.location.reload(); }, 1200);
    } catch (err) {
      W.setStatus(STATUS, err.message, "error");
      controls.forEach(function (b) { b.disabled = false; });
    }
  }

  function wire() {
    var flow = document.getElementById("market-flow");
    if (!flow) return;
    var controls = document.querySelectorAll("[data-market-action], [data-market-form] button");
    if (!window.BCFLWallet || !window.BCFLWallet.available()) {
      controls.forEach(function (b) { b.disabled = true; });
      if (controls.length) document.querySelector(STATUS).textContent = "No browser wallet found; install one (e.g. MetaMask) to buy or sell.";
      return;
    }
    document.querySelectorAll("[data-market-action]").forEach(function (b) {
      b.addEventListener("click", function () { run(flow, b.dataset.url, {}); });
    });
    document.querySelectorAll("[data-market-form]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        run(flow, form.dataset.url, formBody(form));
      });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wire);
  else wire();
})();
