# El correo de Rekey en español. Los mismos mensajes, con las mismas variables, que en.ftl.

## Horas y plazos

month = { $month ->
    [1] enero
    [2] febrero
    [3] marzo
    [4] abril
    [5] mayo
    [6] junio
    [7] julio
    [8] agosto
    [9] septiembre
    [10] octubre
    [11] noviembre
   *[12] diciembre
}
# 14:05 UTC del 26 de noviembre de 2026
time = { $hour }:{ $minute } { $zone } del { $day } de { $month } de { $year }
span-minutes = { $n ->
    [one] { $n } minuto
   *[other] { $n } minutos
}
span-hours = { $n ->
    [one] { $n } hora
   *[other] { $n } horas
}
span-hours-minutes = { $hours } y { $minutes }

## Lo que comparten los correos con un enlace y un código

link-browser = O ábralo en un navegador web:
link-code = Si el enlace no se abre, elija «Introducir un código» en { $product } y escriba:
link-once = El enlace y el código funcionan una sola vez, hasta las { $until } ({ $span } después de su solicitud).
support = ¿Necesita ayuda? { $contact }

## El correo para restablecer la contraseña

reset-subject = Restablezca su contraseña de { $product }
reset-lead = Alguien ha pedido restablecer la contraseña de la cuenta de { $product } de { $address }.
reset-open = Para elegir una contraseña nueva, abra este enlace en el ordenador donde está instalado { $product }:
reset-app-button = Abrir { $product } para restablecer su contraseña
reset-browser-button = Restablecer en el navegador
reset-ignore = Si no lo ha pedido usted, ignore este correo: su contraseña sigue igual y nadie más puede usar este enlace.

## El correo que termina una cuenta nueva

verify-subject = Termine de crear su cuenta de { $product }
verify-lead = Alguien ha pedido crear una cuenta de { $product } para { $address }.
verify-open = Para terminar, abra este enlace en el ordenador donde está instalado { $product }:
verify-app-button = Abrir { $product } para terminar
verify-browser-button = Terminar en el navegador
verify-until-then = Hasta entonces la cuenta no puede iniciar sesión.
verify-ignore = Si no lo ha pedido usted, ignore este correo: no se crea ninguna cuenta para esta dirección.

## Cuando alguien intenta registrar una dirección que ya tiene cuenta

exists-subject = Ya tiene una cuenta de { $product }
exists-lead = Alguien intentó crear una cuenta de { $product } para { $address } a las { $time }, pero esta dirección ya tiene una.
exists-if-you = Si fue usted: inicie sesión con su contraseña, o elija «Olvidé mi contraseña» en { $product } para restablecerla.
exists-if-not = Si no fue usted, puede ignorar este correo: no se ha cambiado nada.

## Después de un cambio de contraseña

changed-subject = Se ha cambiado su contraseña de { $product }
changed-lead = La contraseña de la cuenta de { $product } de { $address } se cambió a las { $time } ({ $how }).
changed-how-in-app = cambiada en { $product }
changed-how-link = restablecida con el enlace enviado por correo
changed-how-code = restablecida con el código enviado por correo
changed-signed-out = Se ha cerrado su sesión en todas partes; vuelva a iniciarla con la contraseña nueva.
changed-not-you = ¿No fue usted?
changed-act = Puede que alguien tenga acceso a su correo. Restablezca su contraseña enseguida («Olvidé mi contraseña» en { $product }) y proteja su cuenta de correo.

## rekeyd mail test

test-subject = Mensaje de prueba de { $product }
test-body = Este es un mensaje de prueba de { $product }, enviado a las { $time }. El envío de correo funciona.

## Las páginas de rekeyd (tras los enlaces https enviados por correo)

page-checking = Comprobando su enlace…
page-email = Correo electrónico
page-code = Código del correo
page-open-app = Abrir en { $product }
page-unreachable = No se pudo contactar bien con el servidor; inténtelo de nuevo.
page-reset-title = Restablezca su contraseña
page-reset-or-here = o elija aquí la contraseña nueva:
page-reset-for = Elija una contraseña nueva para { $address }. Este enlace funciona hasta { $until }.
page-reset-ask-again = Puede pedir un enlace nuevo en la aplicación.
page-reset-code-form = Introduzca su correo, el código del correo y una contraseña nueva.
page-new-password = Contraseña nueva
page-new-password-again = Repita la contraseña nueva
page-show-passwords = Mostrar las contraseñas
page-strength = Solidez de la contraseña
page-strength-0 = Muy débil
page-strength-1 = Débil
page-strength-2 = Aceptable
page-strength-3 = Fuerte
page-strength-4 = Muy fuerte
page-reset-submit = Establecer la contraseña nueva
page-not-same = Las dos contraseñas no coinciden.
page-reset-done = Su contraseña se ha cambiado. Inicie sesión con la contraseña nueva.
page-verify-title = Termine de crear su cuenta
page-verify-or-here = o termine aquí:
page-verify-for = Termine la cuenta de { $address }. Este enlace funciona hasta { $until }.
page-verify-code-form = Introduzca su correo y el código del correo.
page-verify-password = La contraseña que eligió para ella
page-verify-why = Se pide de nuevo para que solo quien la eligió pueda terminar la cuenta.
page-verify-submit = Terminar de crear la cuenta
page-verify-done = Su cuenta { $address } está lista. Inicie sesión con la contraseña que eligió.
page-error-token_used = Este enlace ya se usó; pida uno nuevo si necesita restablecer otra vez.
page-error-token_replaced = Este enlace fue sustituido por uno más reciente; use el enlace del último correo.
page-error-token_stale = La contraseña se cambió después de enviar este enlace, así que el enlace ya no funciona.
page-error-token_expired = Este enlace ha caducado; pida uno nuevo.
page-error-code_invalid = Ese código no funciona: es incorrecto o ya no es válido. Mire el correo más reciente, o abra el enlace que contiene.
page-error-code_burned = Ese código se introdujo mal demasiadas veces y ya no funciona; pida un nuevo restablecimiento.
page-error-password_mismatch = Esa no es la contraseña elegida al pedir esta cuenta.
page-error-account_verified = Este enlace ya se usó y la cuenta está lista: inicie sesión con la contraseña que eligió.
page-error-rate_limited = Demasiados intentos; espere unos minutos e inténtelo de nuevo.
page-error-busy = El servidor está ocupado con otras solicitudes; inténtelo de nuevo en un momento.
