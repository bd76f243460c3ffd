// The timeline page's filters, embedded in the page (see page.rs). A message's `data-p` lists
// its payment ids between spaces, so ' id ' matches whole ids only. `data-ready` tells
// ci/html-check that the script ran to the end.
(function () {
  var input = document.getElementById('payment');
  var boxes = Array.prototype.slice.call(document.querySelectorAll('.node-filter'));
  var msgs = Array.prototype.slice.call(document.querySelectorAll('#timeline .msg'));
  function apply() {
    var id = input.value.trim();
    var shown = {};
    boxes.forEach(function (b) { shown[b.value] = b.checked; });
    msgs.forEach(function (m) {
      var nodeOk = shown[m.getAttribute('data-from')] !== false && shown[m.getAttribute('data-to')] !== false;
      var carries = id !== '' && m.getAttribute('data-p').indexOf(' ' + id + ' ') >= 0;
      m.classList.toggle('hidden', !nodeOk);
      m.classList.toggle('hit', carries);
      m.classList.toggle('dim', id !== '' && !carries);
    });
  }
  input.addEventListener('input', apply);
  boxes.forEach(function (b) { b.addEventListener('change', apply); });
  document.getElementById('clear').addEventListener('click', function () { input.value = ''; apply(); });
  apply();
  document.body.setAttribute('data-ready', 'yes');
})();
