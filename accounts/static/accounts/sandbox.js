// The sandbox provider's return page: send the signed callback on to MTlogin,
// as a real provider's page does (the button does the same without script).
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("sandbox-callback");
  if (form) {
    form.submit();
  }
});
