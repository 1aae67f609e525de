// Tidings: solves the sign-up form's proof-of-work challenge (the ALTCHA
// scheme) in the background. It fetches a challenge from the URL in the
// form's data-challenge attribute, finds the number n in 0..maxnumber with
// hex(SHA-256(salt + n)) === challenge, and puts base64(JSON{algorithm,
// challenge, number, salt, signature}) into the form's hidden "altcha"
// field. A submit before the answer is found waits for it.
(function () {
  "use strict";

  function hex(buffer) {
    return Array.from(new Uint8Array(buffer), function (b) {
      return b.toString(16).padStart(2, "0");
    }).join("");
  }

  async function solve(c) {
    var encoder = new TextEncoder();
    var batch = 500;
    for (var start = 0; start <= c.maxnumber; start += batch) {
      var tries = [];
      for (var n = start; n < start + batch && n <= c.maxnumber; n++) {
        tries.push(crypto.subtle.digest("SHA-256", encoder.encode(c.salt + n)));
      }
      var digests = await Promise.all(tries);
      for (var i = 0; i < digests.length; i++) {
        if (hex(digests[i]) === c.challenge) {
          return start + i;
        }
      }
    }
    throw new Error("no solution");
  }

  function expiry(salt) {
    var match = /[?&]expires=(\d+)/.exec(salt);
    return match ? Number(match[1]) : 0;
  }

  async function prepare(form) {
    var response = await fetch(form.getAttribute("data-challenge"), {
      headers: { Accept: "application/json" },
      credentials: "omit"
    });
    if (!response.ok) {
      throw new Error("no challenge");
    }
    var c = await response.json();
    var number = await solve(c);
    var payload = {
      algorithm: c.algorithm,
      challenge: c.challenge,
      number: number,
      salt: c.salt,
      signature: c.signature
    };
    form.querySelector('input[name="altcha"]').value = btoa(JSON.stringify(payload));
    return expiry(c.salt);
  }

  function attach(form) {
    var field = form.querySelector('input[name="altcha"]');
    var status = form.querySelector('[role="status"]');
    if (!field || !window.crypto || !crypto.subtle) {
      return;
    }
    var ready = prepare(form);
    var waiting = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (waiting) {
        return;
      }
      waiting = true;
      if (status) {
        status.textContent = "Checking your browser…";
      }
      ready
        .then(function (expires) {
          // A page left open past the challenge's life needs a new one.
          if (Date.now() / 1000 > expires - 30) {
            return prepare(form);
          }
          return expires;
        })
        .catch(function () {
          return prepare(form);
        })
        .catch(function () {
          field.value = "";
        })
        .then(function () {
          form.submit();
        });
    });
  }

  document.querySelectorAll("form[data-challenge]").forEach(attach);
})();
